// The console's shell: who is logged in, the navigation, and which page the address names. Each page module
// exports `show(main, shell)` and returns a function that stops what it started (streams, timers, the screen).
import { api, onLoggedOut } from './api.js';
import * as login from './login.js';

// Each page's module is fetched when it is first shown, so that opening the console does not wait for the screen
// viewer (noVNC) or the audit pages.
const pages = [
  { path: /^\/(machines)?$/, section: 'machines', page: () => import('./machines.js') },
  { path: /^\/sessions$/, section: 'sessions', page: () => import('./sessions.js') },
  { path: /^\/queue$/, section: 'queue', page: () => import('./queue.js') },
  { path: /^\/invitations\/open$/, section: 'queue', page: () => import('./open.js') },
  { path: /^\/sessions\/([0-9A-Fa-f-]{36})(\/view)?$/, section: 'sessions', page: () => import('./session.js') },
  { path: /^\/audit$/, section: 'audit', page: () => import('./audit.js') },
  { path: /^\/audit\/sessions\/([0-9A-Fa-f-]{36})$/, section: 'audit', page: () => import('./story.js') },
  { path: /^\/policy$/, section: 'policy', page: () => import('./policy.js') },
  { path: /^\/agents$/, section: 'agents', page: () => import('./agents.js') },
];

const main = document.getElementById('main');
let me = null;
let stop = null;

// The machine list is where most visits begin: its first page is asked for together with the session check, not
// after it. A refusal reaches whoever takes the answer.
const firstMachines = '/machines?limit=100';
let early = /^\/(machines)?$/.test(location.pathname) && !location.search
  ? { path: firstMachines, answer: api('GET', firstMachines) } : null;
early?.answer.catch(() => {});

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
  /** The answer to `GET path` when the console asked for it while starting, once; otherwise null. */
  early(path) {
    if (!early || early.path !== path) return null;
    const { answer } = early;
    early = null;
    return answer;
  },
};

let routed = 0;

async function route() {
  if (stop) { stop(); stop = null; }
  const number = ++routed;
  shell.notify('');
  main.replaceChildren();
  if (!me) {
    // Asked for before anyone logged in: refused, and no use afterwards.
    early = null;
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
  let page;
  try {
    page = await found.page();
  } catch {
    if (number === routed) shell.notify('This page could not be loaded. Reload to try again.');
    return;
  }
  // Another page was asked for while this one's module came.
  if (number !== routed) return;
  stop = page.show(main, shell, location.pathname.match(found.path)) || null;
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
