// My sessions: the operator's sessions, live ones first, with their state in words and the time each has left.
import { api } from './api.js';
import { describeState, element, formatTime, isLive, relative, template } from './format.js';

/** Shows the operator's sessions in `main`, read again every few seconds. */
export function show(main, shell) {
  main.append(template('sessions-page'));
  const body = main.querySelector('tbody');
  const empty = main.querySelector('.empty');

  function row(session) {
    const id = session.id.toLowerCase();
    const [title, sentence] = describeState(session, shell.me.operator.account);
    const end = isLive(session) ? element('button', {
      type: 'button', class: 'danger', text: 'End', 'aria-label': 'End the session on ' + session.machine,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await api('DELETE', '/sessions/' + id);
          await load();
        } catch (refusal) {
          if (!stopped) shell.notify(refusal.message);
          event.target.disabled = false;
        }
      },
    }) : null;
    return element('tr', { 'data-state': session.state },
      element('th', { scope: 'row' }, element('a', { href: '/sessions/' + id, text: session.machine })),
      element('td', {}, element('strong', { text: title }), ' ', element('span', { class: 'quiet', text: sentence })),
      element('td', { text: formatTime(session.offered_at) }),
      element('td', { text: isLive(session) && session.deadline ? relative(session.deadline) : '',
        title: session.deadline ? formatTime(session.deadline) : undefined }),
      element('td', {}, element('a', { href: '/sessions/' + id, text: 'Open' }), ' ', end));
  }

  let timer = null;
  let stopped = false;
  async function load() {
    clearTimeout(timer);
    // A tab in the background does not ask the server, so that a forgotten console ends by its idle timeout.
    if (document.hidden) {
      if (!stopped) timer = setTimeout(load, 3000);
      return;
    }
    try {
      const sessions = await api('GET', '/sessions');
      const mine = sessions.filter((session) => session.helper === shell.me.operator.account);
      mine.sort((a, b) => (isLive(b) - isLive(a)) || b.offered_at.localeCompare(a.offered_at));
      body.replaceChildren(...mine.map(row));
      empty.hidden = mine.length > 0;
    } catch (refusal) {
      // A page that was left (the session ended meanwhile) says nothing more.
      if (!stopped) shell.notify(refusal.message);
    }
    if (!stopped) timer = setTimeout(load, 3000);
  }
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
