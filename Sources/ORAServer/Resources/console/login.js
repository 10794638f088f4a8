// The login page: the directory account and password, sent to the console's login, which sets the cookie.
import { api } from './api.js';
import { template } from './format.js';

/** Shows the login form in `main`; calls `loggedIn` with the identity once the server accepts. */
export function show(main, shell, loggedIn) {
  main.append(template('login-page'));
  const form = main.querySelector('form');
  const error = form.querySelector('.error');
  form.user.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    if (!form.user.value.trim() || !form.password.value) {
      error.textContent = 'Enter your account name and password.';
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await api('POST', '/login/browser', { user: form.user.value, password: form.password.value });
      form.password.value = '';
      loggedIn(await api('GET', '/me'));
    } catch (refusal) {
      error.textContent = refusal.message;
      form.password.select();
    } finally {
      button.disabled = false;
    }
  });
}
