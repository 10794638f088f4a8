// Agents for administrators and auditors: every enrolled machine with its agent and state, revocation
// (administrators), and enrollment tokens (administrators), shown once.
import { api } from './api.js';
import { element, formatTime, relative, template } from './format.js';

/** Shows the agents page in `main`. */
export function show(main, shell) {
  main.append(template('agents-page'));
  const part = (selector) => main.querySelector(selector);
  const administrator = shell.me.roles.includes('administrator');
  const confirm = main.querySelector('dialog.confirm-revoke');
  part('.enroll').hidden = !administrator;

  // A page of machines at a time, by name; "Show more machines" asks for the next.
  const pageSize = 500;
  const more = part('.more');
  let last = null;

  async function load(next = false) {
    try {
      const after = next && last ? '&after=' + encodeURIComponent(last) : '';
      const machines = await api('GET', '/agents?limit=' + pageSize + after);
      last = machines.length ? machines[machines.length - 1].name : last;
      more.hidden = machines.length < pageSize;
      const rows = machines.map((machine) => element('tr', { 'data-machine': machine.name },
        element('th', { scope: 'row', text: machine.name }),
        element('td', { class: 'dn', text: machine.computer_dn }),
        element('td', { text: machine.agent_version + ' on ' + machine.os }),
        element('td', { text: formatTime(machine.enrolled_at), title: 'token by ' + machine.enrolled_by }),
        element('td', { text: machine.last_seen_at ? relative(machine.last_seen_at) : 'never',
          title: machine.last_seen_at ? formatTime(machine.last_seen_at) : undefined }),
        element('td', {}, machine.revoked_at
          ? element('span', { class: 'status revoked', text: 'Revoked ' + formatTime(machine.revoked_at) })
          : element('span', { class: 'status online', text: 'Enrolled' })),
        element('td', {}, administrator && !machine.revoked_at ? element('button', {
          type: 'button', class: 'danger', text: 'Revoke', 'aria-label': 'Revoke ' + machine.name,
          onclick: () => {
            confirm.querySelector('.machine').textContent = machine.name;
            confirm.dataset.machine = machine.name;
            confirm.showModal();
          },
        }) : null)));
      if (next) part('tbody').append(...rows); else part('tbody').replaceChildren(...rows);
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  }

  confirm.querySelector('.cancel').addEventListener('click', () => confirm.close());
  confirm.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    confirm.close();
    try {
      await api('POST', '/agents/' + encodeURIComponent(confirm.dataset.machine) + '/revoke', {});
      shell.notify(confirm.dataset.machine + ' is revoked; its agent was disconnected.');
      load();
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  });

  part('form.token').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const target = form.target.value.trim();
    if (!target) {
      part('.error').textContent = 'Name the machine, or give the OU or group DN.';
      return;
    }
    const body = { [form.kind.value]: target, expires_in_seconds: Number(form.expires.value),
      uses: Number(form.uses.value) || 1 };
    if (form.comment.value.trim()) body.comment = form.comment.value.trim();
    try {
      const created = await api('POST', '/agents/tokens', body);
      part('.error').textContent = '';
      part('.token-value').textContent = created.token;
      part('.command').textContent = 'ora-agent enroll --server ' + location.origin + ' --token ' + created.token
        + (created.machine ? ' --machine ' + created.machine : '');
      part('.expires').textContent = 'Valid until ' + formatTime(created.expires_at) + ', for ' + created.uses
        + ' enrollment(s).';
      part('.created').hidden = false;
      loadTokens();
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  });

  function tokenState(token) {
    if (token.revoked_at) return ['revoked', 'Revoked ' + formatTime(token.revoked_at)];
    if (token.uses_left === 0) return ['used', 'Used up'];
    if (new Date(token.expires_at) <= new Date()) return ['expired', 'Expired'];
    return ['good', 'Good'];
  }

  async function loadTokens() {
    try {
      const tokens = await api('GET', '/agents/tokens');
      const kinds = { machine: 'machine ', ou: 'computers below ', group: 'members of ' };
      part('.tokens tbody').replaceChildren(...tokens.map((token) => {
        const [state, words] = tokenState(token);
        return element('tr', { 'data-token': token.id, 'data-state': state },
          element('td', { text: (kinds[token.bound_kind] || '') + token.bound_to }),
          element('td', { text: token.purpose === 'rekey' ? 're-key' : 'enroll' }),
          element('td', { text: formatTime(token.created_at), title: 'by ' + token.created_by }),
          element('td', { text: formatTime(token.expires_at) }),
          element('td', { text: String(token.uses_left) }),
          element('td', { text: words + (token.comment ? ' — ' + token.comment : '') }),
          element('td', {}, administrator && state === 'good' ? element('button', {
            type: 'button', class: 'danger', text: 'Revoke', 'aria-label': 'Revoke the token for ' + token.bound_to,
            onclick: async (event) => {
              event.target.disabled = true;
              try {
                await api('POST', '/agents/tokens/' + token.id + '/revoke', {});
                shell.notify('The token for ' + token.bound_to + ' is revoked; it enrolls nothing from now on.');
                loadTokens();
              } catch (refusal) {
                part('.error').textContent = refusal.message;
                event.target.disabled = false;
              }
            },
          }) : null));
      }));
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  }

  more.addEventListener('click', () => load(true));
  load();
  loadTokens();
  return () => {};
}
