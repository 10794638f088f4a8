import RFB from '/novnc/core/rfb.js';

// The page is served at /sessions/{id}/view, for a session id the server has checked.
const session = location.pathname.split('/')[2];
const $ = (selector) => document.querySelector(selector);
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.has('token')) {
  sessionStorage.setItem('ora.token', fragment.get('token'));
  history.replaceState(null, '', location.pathname);
}
let rfb = null;
let opening = false;

async function api(method, path, body) {
  const headers = { 'Authorization': 'Bearer ' + sessionStorage.getItem('ora.token') };
  if (body) headers['Content-Type'] = 'application/json';
  const response = await fetch('/api/v1' + path, { method, headers, body: body && JSON.stringify(body) });
  const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (response.status === 401) { askToLogIn(); }
  if (!response.ok) throw new Error(answer.message || ('the server answered HTTP ' + response.status));
  return answer;
}

function say(text) { $('#message').textContent = text; }

const sentences = {
  offered: 'offered, waiting for the machine',
  awaiting_consent: 'waiting for the person at the machine to answer',
  viewing: 'viewing (no control)',
  control_requested: 'control requested, waiting for the answer',
  controlling: 'you have control',
  ended: 'ended',
};

function show(state) {
  $('#machine').textContent = state.machine;
  $('#helper').textContent = 'helper: ' + state.helper;
  $('#state').textContent = (sentences[state.state] || state.state)
    + (state.end_reason ? ' (' + state.end_reason + ')' : '');
  document.body.dataset.state = state.state;
  const active = ['viewing', 'control_requested', 'controlling'].includes(state.state);
  $('#control').disabled = !(state.state === 'viewing' && state.mode === 'control');
  $('#end').disabled = state.state === 'ended';
  if (rfb) rfb.viewOnly = state.state !== 'controlling';
  if (active && !rfb && !opening) openScreen().catch((error) => say(error.message));
  if (!active && rfb) rfb.disconnect();
}

async function openScreen() {
  opening = true;
  try {
    const ticket = await api('POST', '/sessions/' + session + '/screen');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    rfb = new RFB($('#screen'), scheme + location.host + ticket.path, { wsProtocols: ['binary'] });
    rfb.viewOnly = document.body.dataset.state !== 'controlling';
    rfb.addEventListener('connect', () => { document.body.dataset.screen = 'connected'; say(''); });
    rfb.addEventListener('disconnect', () => {
      document.body.dataset.screen = 'disconnected';
      rfb = null;
      if (document.body.dataset.state !== 'ended') say('The screen connection closed; reload to see it again.');
    });
  } finally {
    opening = false;
  }
}

async function follow() {
  const response = await fetch('/api/v1/sessions/' + session + '/events', {
    headers: { 'Authorization': 'Bearer ' + sessionStorage.getItem('ora.token') },
  });
  if (response.status === 401) return askToLogIn();
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    return say(answer.message || ('the server answered HTTP ' + response.status));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    let end;
    while ((end = pending.indexOf('\n\n')) >= 0) {
      const line = pending.slice(0, end).split('\n').find((text) => text.startsWith('data: '));
      pending = pending.slice(end + 2);
      if (line) show(JSON.parse(line.slice(6)));
    }
  }
}

function askToLogIn() {
  sessionStorage.removeItem('ora.token');
  $('#login').hidden = false;
}

$('#login').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const result = await fetch('/api/v1/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: $('#user').value, password: $('#password').value }),
    });
    const answer = await result.json().catch(() => ({}));
    if (!result.ok) throw new Error(answer.message || ('the server answered HTTP ' + result.status));
    sessionStorage.setItem('ora.token', answer.token);
    $('#login').hidden = true;
    $('#password').value = '';
    say('');
    follow().catch((error) => say(error.message));
  } catch (error) {
    say(error.message);
  }
});
$('#control').addEventListener('click', () => {
  api('POST', '/sessions/' + session + '/control').then(show, (error) => say(error.message));
});
$('#end').addEventListener('click', () => {
  api('DELETE', '/sessions/' + session).then(show, (error) => say(error.message));
});

if (sessionStorage.getItem('ora.token')) {
  follow().catch((error) => say(error.message));
} else {
  askToLogIn();
}
