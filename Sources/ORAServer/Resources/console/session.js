// A session's page: the state in a banner that cannot be mistaken, the screen through noVNC, the helper's actions,
// and the chat with the person at the machine, with what their agent says of them. The state and the chat follow
// the session's event stream; the screen opens while the session lets the helper see it and closes when it does
// not.
import RFB from '/novnc/core/rfb.js';
import { api, follow } from './api.js';
import { describeState, element, formatClock, formatTime, relative, template } from './format.js';

const seeing = ['viewing', 'control_requested', 'controlling'];

/** Shows the session `match[1]` in `main`. */
export function show(main, shell, match) {
  const id = match[1].toLowerCase();
  main.append(template('session-page'));
  const page = main.querySelector('section.session');
  const part = (selector) => page.querySelector(selector);
  const screen = part('.screen');
  const confirm = main.querySelector('dialog.confirm-end');
  const streams = new AbortController();
  let session = null;
  let rfb = null;
  let opening = false;
  // Set when the screen closed unexpectedly: it is opened again only when the helper asks.
  let dropped = false;
  let stopped = false;

  function problem(text) {
    part('.problem').textContent = text;
  }

  // Chat lines by number: the transcript read at the start and the stream may both bring a line.
  const lines = new Map();
  const chatLines = part('.chat-lines');
  const chatInput = part('#chat-text');
  const how = { esc: 'pressed Esc', ctrl_c: 'pressed Ctrl+C', button: 'pressed Stop control' };

  function addChat(message) {
    if (lines.has(message.sequence)) return;
    const kept = message.text !== undefined && message.text !== null;
    const item = element('li', { class: message.from, 'data-sequence': message.sequence },
      element('time', { datetime: message.at, title: formatTime(message.at), text: formatClock(message.at) }),
      element('span', { class: 'name', text: message.from === 'helper' && session
        && session.helper === shell.me.operator.account ? 'You' : message.name }),
      kept ? element('span', { class: 'text', text: message.text })
        : element('span', { class: 'kept', text: 'text not kept (' + (message.digest || 'no digest') + ')' }));
    lines.set(message.sequence, item);
    const after = [...lines.keys()].filter((sequence) => sequence > message.sequence).sort((a, b) => a - b)[0];
    if (after === undefined) chatLines.append(item); else chatLines.insertBefore(item, lines.get(after));
    chatLines.scrollTop = chatLines.scrollHeight;
  }

  function showPerson(next) {
    const parts = [];
    if (!next.person) {
      if (seeing.includes(next.state)) parts.push('The session window has not been reported on the machine yet.');
    } else {
      parts.push(next.person.window ? 'The session window is open on ' + next.machine + '.'
        : 'The session window is not on the screen of ' + next.machine + '.');
      if (next.person.typing && next.state !== 'ended') parts.push('The person is typing…');
    }
    if (next.control_stopped_by && how[next.control_stopped_by]) {
      parts.push('Control was taken back at ' + formatClock(next.control_stopped_at) + ': the person '
        + how[next.control_stopped_by] + '.');
    }
    part('.person').textContent = parts.join(' ');
    const open = seeing.includes(next.state);
    chatInput.disabled = !open;
    part('.chat-form button').disabled = !open;
    chatInput.placeholder = open ? 'Write to the person at ' + next.machine
      : next.state === 'ended' ? 'The session has ended' : 'Chat opens when the person accepts';
  }

  function update(next) {
    session = next;
    showPerson(next);
    const me = shell.me.operator.account;
    const [title, sentence] = describeState(next, me);
    page.dataset.state = next.state;
    part('.state').textContent = title;
    part('.detail').textContent = sentence;
    part('.machine').textContent = next.machine;
    confirm.querySelector('.machine').textContent = next.machine;
    part('.chat .machine').textContent = next.machine;
    part('.helper').textContent = next.helper === me ? 'you (' + me + ')' : next.helper;
    part('.ticket').textContent = next.ticket || '—';
    part('.reason').textContent = next.reason || '—';
    showDeadline();
    document.title = next.machine + ' — ' + title + ' — ora';

    const controlling = next.state === 'controlling';
    const request = part('.request-control');
    request.disabled = !(next.state === 'viewing' && next.mode === 'control');
    request.title = next.mode === 'control' ? '' : 'This session was offered for viewing only';
    part('.ctrl-alt-del').hidden = !controlling;
    part('.clipboard').hidden = !controlling;
    part('.end').disabled = next.state === 'ended';
    part('.next').hidden = next.state !== 'ended';
    if (rfb) rfb.viewOnly = !controlling;

    if (seeing.includes(next.state)) {
      if (!rfb && !opening && !dropped) openScreen();
    } else {
      closeScreen();
      part('.reconnect').hidden = true;
      if (next.state === 'ended') problem('');
    }
  }

  function showDeadline() {
    const deadline = session && session.state !== 'ended' && session.deadline;
    part('.deadline').textContent = deadline
      ? formatTime(session.deadline) + ' (' + relative(session.deadline) + ')' : '—';
  }

  async function openScreen() {
    opening = true;
    problem('');
    part('.reconnect').hidden = true;
    try {
      const ticket = await api('POST', '/sessions/' + id + '/screen');
      if (stopped || !session || !seeing.includes(session.state)) return;
      const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
      const connection = new RFB(screen, scheme + location.host + ticket.path, { wsProtocols: ['binary'] });
      rfb = connection;
      connection.viewOnly = session.state !== 'controlling';
      connection.scaleViewport = part('.scale').checked;
      let shown = false;
      let refused = '';
      connection.addEventListener('connect', () => {
        shown = true;
        page.dataset.screen = 'connected';
        problem('');
      });
      // The agent says why it cannot show the screen in RFB's own words; that reason is what the helper sees.
      connection.addEventListener('securityfailure', (event) => {
        refused = 'The machine cannot show its screen: ' + (event.detail.reason || 'no reason given') + '.';
        problem(refused);
      });
      connection.addEventListener('clipboard', (event) => {
        if (session && session.state === 'controlling') part('#clipboard-text').value = event.detail.text;
      });
      connection.addEventListener('disconnect', (event) => {
        if (rfb === connection) rfb = null;
        page.dataset.screen = 'closed';
        if (stopped || !session || !seeing.includes(session.state)) return;
        dropped = true;
        part('.reconnect').hidden = false;
        // Closed before the desktop answered at all, the machine could not show its screen; closed after, the
        // connection was lost or the machine stopped showing it.
        problem(refused
          ? refused + ' The session goes on; you can try again.'
          : !shown
          ? 'The machine could not show its screen: it has no display that can be shown, or its screen program '
            + 'failed. The session goes on; you can try again.'
          : event.detail.clean
            ? 'The machine stopped showing its screen. The session goes on; you can try again.'
            : 'The screen connection was lost. The session goes on; reconnect to see the screen again.');
      });
    } catch (refusal) {
      dropped = true;
      part('.reconnect').hidden = false;
      problem('The screen cannot be shown: ' + refusal.message);
    } finally {
      opening = false;
    }
  }

  function closeScreen() {
    if (!rfb) return;
    const connection = rfb;
    rfb = null;
    connection.disconnect();
    page.dataset.screen = 'closed';
  }

  part('.reconnect').addEventListener('click', () => {
    dropped = false;
    if (session && seeing.includes(session.state) && !rfb && !opening) openScreen();
  });
  part('.request-control').addEventListener('click', async (event) => {
    event.target.disabled = true;
    try {
      // The event stream shows the request and the answer; the request's own answer is not shown, since the
      // person's quick answer may arrive on the stream before it and must not be overwritten by an older state.
      await api('POST', '/sessions/' + id + '/control');
    } catch (refusal) {
      problem(refusal.message);
      event.target.disabled = false;
    }
  });
  part('.ctrl-alt-del').addEventListener('click', () => {
    if (rfb && session.state === 'controlling') rfb.sendCtrlAltDel();
  });
  part('.paste').addEventListener('click', () => {
    if (rfb && session.state === 'controlling') rfb.clipboardPasteFrom(part('#clipboard-text').value);
  });
  part('.scale').addEventListener('change', (event) => {
    if (rfb) rfb.scaleViewport = event.target.checked;
  });
  part('.fullscreen').addEventListener('click', () => {
    screen.requestFullscreen().catch(() => problem('This browser did not allow full screen.'));
  });
  part('.chat-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = chatInput.value;
    if (!text.trim()) return;
    part('.chat-problem').textContent = '';
    try {
      addChat(await api('POST', '/sessions/' + id + '/chat', { text }));
      chatInput.value = '';
    } catch (refusal) {
      // The line stays in the field, to be changed or sent again.
      part('.chat-problem').textContent = 'Not sent: ' + refusal.message;
    }
  });
  part('.end').addEventListener('click', () => confirm.showModal());
  confirm.querySelector('.cancel').addEventListener('click', () => confirm.close());
  confirm.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    confirm.close();
    try {
      // Ended is the last state: showing it at once cannot hide a later one.
      update(await api('DELETE', '/sessions/' + id));
    } catch (refusal) {
      problem(refusal.message);
    }
  });

  async function watch() {
    while (!stopped) {
      try {
        await follow('/sessions/' + id + '/events', (data, name) => {
          if (name === 'chat') addChat(data); else if (name === 'state') update(data);
        }, streams.signal);
      } catch (refusal) {
        if (stopped) return;
        if (refusal.status) {
          page.dataset.state = 'unavailable';
          part('.state').textContent = refusal.status === 404 ? 'No such session' : 'The session cannot be shown';
          part('.detail').textContent = refusal.message;
          part('.next').hidden = false;
          return;
        }
      }
      if (stopped || (session && session.state === 'ended')) return;
      // The stream closed while the session runs (a server restarting): follow it again shortly.
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  watch();
  // The chat so far, from the audit log; lines the stream brings meanwhile are kept in order by their number.
  api('GET', '/sessions/' + id + '/chat').then((transcript) => transcript.messages.forEach(addChat))
    .catch((refusal) => { part('.chat-problem').textContent = 'The chat so far cannot be shown: ' + refusal.message; });
  const clock = setInterval(showDeadline, 1000);
  // Watching a live session in a visible tab is use of the console: its idle timeout must not log the helper out
  // in the middle of it (the event stream alone is one long request).
  const presence = setInterval(() => {
    if (!document.hidden && session && session.state !== 'ended') api('GET', '/me').catch(() => {});
  }, 60000);
  return () => {
    stopped = true;
    streams.abort();
    clearInterval(clock);
    clearInterval(presence);
    closeScreen();
  };
}
