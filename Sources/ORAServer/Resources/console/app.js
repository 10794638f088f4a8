// The console's shell: who is logged in, the navigation, and which page the address names. Each page module
// exports `show(main, shell)` and returns a function that stops what it started (streams, timers, the screen).
import { api, onLoggedOut } from './api.js';
import * as login from './login.js';
import * as machines from './machines.js';
import * as sessions from './sessions.js';
import * as session from './session.js';
import * as audit from './audit.js';
import * as story from './story.js';
import * as policy from './policy.js';
import * as agents from './agents.js';

const pages = [
  { path: /^\/(machines)?$/, section: 'machines', page: machines },
  { path: /^\/sessions$/, section: 'sessions', page: sessions },
  { path: /^\/sessions\/([0-9A-Fa-f-]{36})(\/view)?$/, section: 'sessions', page: session },
  { path: /^\/audit$/, section: 'audit', page: audit },
  { path: /^\/audit\/sessions\/([0-9A-Fa-f-]{36})$/, section: 'audit', page: story },
  { path: /^\/policy$/, section: 'policy', page: policy },
  { path: /^\/agents$/, section: 'agents', page: agents },
];

const main = document.getElementById('main');
let me = null;
let stop = null;

/** What every page gets: who is logged in, how to move to another page, and a line to tell the person something. */
const shell = {
  get me() { return me; },
  navigate(path) {
    history.pushState(null, '', path);
    route();
  },
  notify(text) {
    document.getElementById('notice').textContent = text;
  },
};

function route() {
  if (stop) { stop(); stop = null; }
  shell.notify('');
  main.replaceChildren();
  if (!me) {
    stop = login.show(main, shell, loggedIn);
    return;
  }
  const found = pages.find((entry) => entry.path.test(location.pathname));
  for (const link of document.querySelectorAll('#bar nav a')) {
    if (found && link.dataset.section === found.section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!found) {
    main.textContent = 'There is no such page here.';
    return;
  }
  stop = found.page.show(main, shell, location.pathname.match(found.path)) || null;
  main.focus({ preventScroll: true });
}

function loggedIn(identity) {
  me = identity;
  const bar = document.getElementById('bar');
  document.getElementById('who').textContent = identity.operator.display_name + ' (' + identity.operator.account + ')';
  bar.hidden = false;
  // Sections for a role are shown to those who have it; the server checks the role on every request anyway.
  for (const link of document.querySelectorAll('#bar nav a[data-roles]')) {
    link.hidden = !link.dataset.roles.split(' ').some((role) => identity.roles.includes(role));
  }
  if (location.pathname === '/login') history.replaceState(null, '', '/machines');
  route();
}

onLoggedOut(() => {
  if (!me) return;
  me = null;
  document.getElementById('bar').hidden = true;
  route();
  shell.notify('Your session has ended. Log in again to continue.');
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/logout');
  } catch {
    // Logged out already, or the server is away: the page forgets the person either way.
  }
  me = null;
  document.getElementById('bar').hidden = true;
  history.pushState(null, '', '/login');
  route();
  shell.notify('You logged out.');
});

// Links inside the console change the page without reloading it.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="/"]:not([download])');
  if (!link || link.getAttribute('href').startsWith('/api/') || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  shell.navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', route);

/** Uses a one-time login link (`ora open`): its code is in the address's fragment, which no server ever saw. */
async function useLoginLink() {
  const code = location.hash.slice(1);
  history.replaceState(null, '', '/login');
  const answer = await api('POST', '/login/link', { code });
  history.replaceState(null, '', answer.target || '/machines');
}

try {
  if (location.pathname === '/login/link') await useLoginLink();
  loggedIn(await api('GET', '/me'));
} catch (error) {
  me = null;
  route();
  if (error.status !== 401 || error.code === 'invalid_login_link') shell.notify(error.message);
}
