// The helpdesk's queue: the people who asked for help (`ora-agent invite --helpdesk`) and whom this helper may
// answer, live. The first helper to take a request gets it; then the password the person tells them by phone opens
// it — proved to the machine from this page — and the person is asked, as for any offer.
import { api, follow } from './api.js';
import { element, formatTime, template } from './format.js';
import { openFromForm } from './invitation.js';

/** Shows the queue in `main`, kept current from its event stream. */
export function show(main, shell) {
  main.append(template('queue-page'));
  const body = main.querySelector('tbody');
  const empty = main.querySelector('.empty');
  const rows = new Map();
  const stop = new AbortController();

  function stateText(invitation) {
    if (invitation.state === 'taken') {
      const mine = invitation.taken_by === shell.me.operator.display_name;
      return (mine ? 'Taken by you' : 'Taken by ' + invitation.taken_by) + ' at ' + formatTime(invitation.taken_at);
    }
    if (invitation.state === 'withdrawn') {
      return invitation.withdrawn_reason === 'expired' ? 'Expired' : 'Revoked by the person';
    }
    return 'Waiting since ' + formatTime(invitation.posted_at);
  }

  /** The form that opens a taken invitation: the password the person tells, the ticket, and the access asked. */
  function opener(invitation, row) {
    const password = element('input', { type: 'password', name: 'password', autocomplete: 'off',
      'aria-label': 'The password ' + invitation.asked_by + ' tells you' });
    const ticket = element('input', { type: 'text', name: 'ticket', placeholder: 'Ticket', 'aria-label': 'Ticket' });
    const control = element('input', { type: 'checkbox', name: 'control' });
    const submit = element('button', { type: 'submit', text: 'Open' });
    const form = element('form', { class: 'open-invitation' },
      invitation.password
        ? element('label', {}, 'Call ' + invitation.asked_by + ' for the password: ', password)
        : element('span', { class: 'quiet', text: 'No password. ' }),
      ' ', ticket, ' ', element('label', {}, control, ' ask for control later'), ' ', submit);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      openFromForm(invitation.file, form, shell, stop.signal);
    });
    row.querySelector('.actions').replaceChildren(form);
    (invitation.password ? password : ticket).focus();
  }

  function render(invitation) {
    const id = invitation.id.toLowerCase();
    const take = invitation.state === 'open' ? element('button', {
      type: 'button', text: 'Take', 'aria-label': 'Take the request of ' + invitation.asked_by,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          const taken = await api('POST', '/invitations/' + id + '/take');
          const row = render(taken);
          opener(taken, row);
        } catch (refusal) {
          if (!stop.signal.aborted) shell.notify(refusal.message);
          event.target.disabled = false;
        }
      },
    }) : null;
    const row = element('tr', { 'data-state': invitation.state, 'data-id': id },
      element('th', { scope: 'row', text: invitation.machine.toUpperCase() }),
      element('td', {}, element('strong', { text: invitation.asked_by }), ' ',
        element('span', { class: 'quiet', text: invitation.asked_by_account })),
      element('td', { class: 'message', text: invitation.message || '' }),
      element('td', { text: stateText(invitation), title: 'Valid until ' + formatTime(invitation.expires_at) }),
      element('td', { text: invitation.password ? 'Required' : 'None' }),
      element('td', { class: 'actions' }, take));
    const old = rows.get(id);
    if (old) old.replaceWith(row); else body.prepend(row);
    rows.set(id, row);
    empty.hidden = rows.size > 0;
    return row;
  }

  follow('/invitations/events', (invitation, name) => {
    if (name !== 'invitation') return;
    const id = invitation.id.toLowerCase();
    // The form of one this helper took stays until they open it or leave the page.
    if (rows.get(id)?.querySelector('form') && invitation.state === 'taken') return;
    render(invitation);
    // Requests that left the queue go after a moment, so that their end can be read.
    if (invitation.state !== 'open') {
      setTimeout(() => {
        const row = rows.get(id);
        if (row && !row.querySelector('form')) { row.remove(); rows.delete(id); empty.hidden = rows.size > 0; }
      }, 60_000);
    }
  }, stop.signal).catch((refusal) => {
    if (!stop.signal.aborted) shell.notify(refusal.message + ' The queue is not live any more; reload the page.');
  });
  empty.hidden = false;
  return () => stop.abort();
}
