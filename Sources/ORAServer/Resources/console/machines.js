// Machines: every enrolled machine, whether it is online, what this operator may do there and which policy says so,
// and the Offer help dialog.
import { api, ApiError } from './api.js';
import { element, formatTime, relative, template } from './format.js';

const accessWords = { control: 'See and control', view: 'See the screen', none: 'Nothing' };

/** Shows the machine list in `main`. */
export function show(main, shell) {
  main.append(template('machines-page'));
  const search = main.querySelector('form.toolbar');
  const body = main.querySelector('tbody');
  const count = main.querySelector('.count');
  const empty = main.querySelector('.empty');
  const dialog = main.querySelector('dialog.offer');
  let machines = [];

  function render() {
    const words = search.q.value.trim().toLowerCase();
    const shown = machines.filter((machine) => machine.name.includes(words)
      && (!search.online.checked || machine.online) && (!search.allowed.checked || machine.access !== 'none'));
    // Reading the list again must not close an explanation the person opened.
    const open = new Set([...body.querySelectorAll('details[open]')].map((node) => node.closest('tr').dataset.machine));
    body.replaceChildren(...shown.map(row));
    for (const details of body.querySelectorAll('details')) {
      if (open.has(details.closest('tr').dataset.machine)) details.open = true;
    }
    count.textContent = shown.length === machines.length ? machines.length + ' machines'
      : shown.length + ' of ' + machines.length + ' machines';
    empty.hidden = shown.length > 0;
  }

  function row(machine) {
    const status = machine.revoked ? element('span', { class: 'status revoked', text: 'Enrollment revoked' })
      : machine.online ? element('span', { class: 'status online', text: 'Online' })
        : element('span', { class: 'status offline', text: 'Offline' + (machine.last_seen_at
          ? ', last seen ' + relative(machine.last_seen_at) : ', never connected'),
        title: machine.last_seen_at ? formatTime(machine.last_seen_at) : undefined });
    const why = element('details', { class: 'why' },
      element('summary', { text: accessWords[machine.access] || machine.access }),
      element('p', { text: machine.explanation }));
    const offer = element('button', {
      type: 'button', class: 'primary', text: 'Offer help',
      disabled: !machine.online || machine.access === 'none' || machine.revoked,
      title: !machine.online ? 'The machine is offline' : machine.access === 'none' ? 'The policy does not allow you'
        : undefined,
      'aria-label': 'Offer help to ' + machine.name,
      onclick: () => openOffer(machine),
    });
    return element('tr', { 'data-machine': machine.name },
      element('th', { scope: 'row', text: machine.name }), element('td', {}, status), element('td', {}, why),
      element('td', {}, offer));
  }

  function openOffer(machine) {
    const form = dialog.querySelector('form');
    form.reset();
    dialog.querySelector('.machine').textContent = machine.name;
    dialog.querySelector('.policy').textContent = 'Policy: ' + machine.explanation;
    const control = form.querySelector('input[value="control"]');
    control.disabled = machine.access !== 'control';
    form.querySelector('.error').textContent = '';
    dialog.dataset.machine = machine.name;
    dialog.showModal();
    form.ticket.focus();
  }

  dialog.querySelector('.cancel').addEventListener('click', () => dialog.close());
  dialog.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const error = form.querySelector('.error');
    const offer = { machine: dialog.dataset.machine, mode: form.mode.value };
    if (form.ticket.value.trim()) offer.ticket = form.ticket.value.trim();
    if (form.reason.value.trim()) offer.reason = form.reason.value.trim();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const session = await api('POST', '/offers', offer);
      dialog.close();
      shell.navigate('/sessions/' + session.id.toLowerCase());
    } catch (refusal) {
      error.textContent = refusal instanceof ApiError ? refusal.message : String(refusal);
    } finally {
      button.disabled = false;
    }
  });

  search.addEventListener('input', render);
  search.addEventListener('submit', (event) => event.preventDefault());

  let timer = null;
  let stopped = false;
  async function load() {
    // A tab in the background does not ask the server, so that a forgotten console ends by its idle timeout.
    if (document.hidden) {
      if (!stopped) timer = setTimeout(load, 10000);
      return;
    }
    try {
      machines = await api('GET', '/machines');
      machines.sort((a, b) => a.name.localeCompare(b.name));
      render();
    } catch (refusal) {
      // A page that was left (the session ended meanwhile) says nothing more.
      if (!stopped) shell.notify(refusal.message);
    }
    // Online states change: the list is read again while the page is open.
    if (!stopped) timer = setTimeout(load, 10000);
  }
  load();
  search.q.focus();
  return () => { stopped = true; clearTimeout(timer); };
}
