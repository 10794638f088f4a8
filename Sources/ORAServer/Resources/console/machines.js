// Machines: enrolled machines found by name, OU and group, whether each is online, what this operator may do there and
// which policy says so, and the Offer help dialog. The server searches and pages; the page never loads them all.
import { api, ApiError } from './api.js';
import { dnParts, dnPath, element, formatTime, relative, template } from './format.js';

const accessWords = { control: 'See and control', view: 'See the screen', none: 'Nothing' };
const pageSize = 100;
const filterNames = ['q', 'ou', 'group'];

/** Shows the machine list in `main`, with the search of the page's address. */
export function show(main, shell) {
  main.append(template('machines-page'));
  const search = main.querySelector('form.toolbar');
  const body = main.querySelector('tbody');
  const count = main.querySelector('.count');
  const empty = main.querySelector('.empty');
  const error = main.querySelector('.error');
  const more = main.querySelector('.more');
  const dialog = main.querySelector('dialog.offer');
  const address = new URLSearchParams(location.search);
  let next = null;
  let shown = 0;
  let asked = 0;
  let rendered = false;

  /** The search's query parameters, without paging. */
  function query() {
    const parameters = new URLSearchParams();
    for (const name of filterNames) {
      const value = search[name].value.trim();
      if (value) parameters.set(name, value);
    }
    if (search.online.checked) parameters.set('online', 'true');
    if (search.allowed.checked) parameters.set('access', 'view');
    return parameters;
  }

  /** Reads the first machines again (as many as are shown, or a page), or the next page after them. */
  async function load(append = false) {
    const parameters = query();
    const number = ++asked;
    parameters.set('limit', String(append ? pageSize : Math.min(500, Math.max(pageSize, shown))));
    if (append && next) parameters.set('after', next);
    try {
      const path = '/machines?' + parameters;
      const page = await (shell.early(path) || api('GET', path));
      // An answer to a search typed over since is not shown.
      if (number !== asked) return;
      error.textContent = '';
      // Reading the list again must not close an explanation the person opened.
      const open = new Set([...body.querySelectorAll('details[open]')].map((node) => node.closest('tr').dataset.machine));
      const rows = page.machines.map(row);
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      for (const details of body.querySelectorAll('details')) {
        if (open.has(details.closest('tr').dataset.machine)) details.open = true;
      }
      shown = body.children.length;
      next = page.next || null;
      more.hidden = !next;
      const matched = page.matched.toLocaleString();
      count.textContent = search.allowed.checked
        ? shown + (next ? '+' : '') + ' where you may help, of ' + matched + ' that match'
        : (next ? shown + ' of ' + matched : matched) + (page.matched === 1 ? ' machine' : ' machines');
      empty.hidden = shown > 0;
      if (!rendered) {
        rendered = true;
        // The moment the list is there to use, for the console's performance measurements.
        performance.mark('ora:machines-rendered');
      }
    } catch (refusal) {
      // A page that was left (the session ended meanwhile) says nothing more.
      if (!stopped && number === asked) error.textContent = refusal.message;
    }
  }

  /** Fills the OU and group choices with those machines lie in. */
  async function scopes() {
    try {
      const answer = await api('GET', '/machines/scopes');
      const groupName = (dn) => dnParts(dn)[0][1];
      const choices = [[search.ou, answer.containers, dnPath], [search.group, answer.groups, groupName]];
      for (const [select, list, label] of choices) {
        select.append(...list.map((scope) => element('option', {
          value: scope.dn, title: scope.dn, text: label(scope.dn) + ' (' + scope.machines.toLocaleString() + ')',
        })));
        if (address.has(select.name)) select.value = address.get(select.name);
      }
    } catch (refusal) {
      if (!stopped) error.textContent = refusal.message;
    }
  }

  function row(machine) {
    const status = machine.revoked ? element('span', { class: 'status revoked', text: 'Enrollment revoked' })
      : machine.online ? element('span', { class: 'status online', text: 'Online' + (machine.last_seen_at
        ? ' since ' + relative(machine.last_seen_at).replace(/ ago$/, '') : ''),
      title: machine.last_seen_at ? 'Connected ' + formatTime(machine.last_seen_at) : undefined })
        : element('span', { class: 'status offline', text: 'Offline' + (machine.last_seen_at
          ? ', last seen ' + relative(machine.last_seen_at) : ', never connected'),
        title: machine.last_seen_at ? formatTime(machine.last_seen_at) : undefined });
    const why = element('details', { class: 'why' },
      element('summary', { text: accessWords[machine.access] || machine.access }),
      element('p', { text: machine.explanation }),
      machine.directory_checked_at
        ? element('p', { class: 'quiet', text: 'Directory looked up ' + relative(machine.directory_checked_at) + '.' })
        : null);
    const offer = element('button', {
      type: 'button', class: 'primary', text: 'Offer help',
      disabled: !machine.online || machine.access === 'none' || machine.revoked,
      title: !machine.online ? 'The machine is offline' : machine.access === 'none' ? 'The policy does not allow you'
        : undefined,
      'aria-label': 'Offer help to ' + machine.name,
      onclick: () => openOffer(machine),
    });
    return element('tr', { 'data-machine': machine.name },
      element('th', { scope: 'row' }, machine.name, machine.computer_dn ? element('span', {
        class: 'quiet where', text: dnPath(machine.computer_dn, 1), title: machine.computer_dn,
      }) : null),
      element('td', {}, status), element('td', {}, why),
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

  // The address keeps the search, so that a view can be bookmarked and shared (the OU and group once their choices
  // are there).
  if (address.has('q')) search.q.value = address.get('q');
  search.online.checked = address.get('online') === 'true';
  search.allowed.checked = address.get('access') === 'view';

  let typing = null;
  function searchNow() {
    clearTimeout(typing);
    const kept = query().toString();
    history.replaceState(null, '', '/machines' + (kept ? '?' + kept : ''));
    shown = 0;
    next = null;
    load(false);
  }
  search.addEventListener('input', (event) => {
    // Typing waits for a pause; a choice or a tick asks at once.
    clearTimeout(typing);
    if (event.target.name === 'q') typing = setTimeout(searchNow, 150); else searchNow();
  });
  search.addEventListener('submit', (event) => {
    event.preventDefault();
    searchNow();
  });
  more.addEventListener('click', () => load(true));

  let timer = null;
  let stopped = false;
  async function refresh() {
    // A tab in the background does not ask the server, so that a forgotten console ends by its idle timeout.
    if (!document.hidden) await load(false);
    // Online states change: the list is read again while the page is open.
    if (!stopped) timer = setTimeout(refresh, 10000);
  }
  // The OU and group choices come after the first machines, unless the address names one to search by.
  if (address.has('ou') || address.has('group')) scopes().then(refresh); else refresh().then(scopes);
  search.q.focus();
  return () => { stopped = true; clearTimeout(timer); clearTimeout(typing); };
}
