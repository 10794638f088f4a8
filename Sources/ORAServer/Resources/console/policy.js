// Policy for administrators and auditors: the active version with its policies and files, the history with a
// field-by-field comparison of any two versions and rollback (administrators), and the explain form.
import { api } from './api.js';
import { element, formatTime, template } from './format.js';

function decides(policy) {
  if (policy.effect === 'deny') return 'deny';
  return policy.access === 'control' ? 'allow see and control' : 'allow see';
}

/** Shows the policy page in `main`. */
export function show(main, shell) {
  main.append(template('policy-page'));
  const part = (selector) => main.querySelector(selector);
  const administrator = shell.me.roles.includes('administrator');
  const rollback = main.querySelector('dialog.confirm-rollback');

  async function load() {
    part('.error').textContent = '';
    try {
      const [active, history] = await Promise.all([api('GET', '/policy'), api('GET', '/policy/versions')]);
      const activation = active.activation;
      part('.active').textContent = activation
        ? 'Version ' + activation.version + ', ' + (activation.action === 'rollback' ? 'rolled back to' : 'applied')
          + ' by ' + activation.actor_dn + ' on ' + formatTime(activation.activated_at)
          + (activation.comment ? ': “' + activation.comment + '”' : '')
        : 'No policy was ever applied: every offer is denied.';
      part('.policies tbody').replaceChildren(...active.policies.map((policy) => element('tr', {},
        element('th', { scope: 'row', text: policy.name }), element('td', { text: decides(policy) }),
        element('td', { text: policy.description || '' }), element('td', { class: 'quiet', text: policy.location }))));
      part('.files').replaceChildren(...active.files.map((file) => element('details', { class: 'file' },
        element('summary', { text: file.name }), element('pre', { text: file.content }))));
      const versions = history;
      part('.history tbody').replaceChildren(...versions.map((entry, index) => element('tr', {
        'data-version': entry.version },
      element('th', { scope: 'row', text: String(entry.version) + (index === 0 ? ' (active)' : '') }),
      element('td', { text: entry.action === 'rollback' ? 'rolled back to' : 'applied' }),
      element('td', { text: entry.actor_dn }), element('td', { text: formatTime(entry.activated_at) }),
      element('td', { text: entry.comment || '' }),
      element('td', {}, element('input', { type: 'radio', name: 'from', value: entry.version,
        'aria-label': 'Compare from version ' + entry.version, checked: index === 1 })),
      element('td', {}, element('input', { type: 'radio', name: 'to', value: entry.version,
        'aria-label': 'Compare to version ' + entry.version, checked: index === 0 })),
      element('td', {}, administrator && index > 0 ? element('button', { type: 'button', class: 'danger',
        text: 'Roll back to ' + entry.version, onclick: () => confirmRollback(entry.version) }) : null))));
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  }

  function confirmRollback(version) {
    rollback.querySelector('.version').textContent = String(version);
    rollback.querySelector('form').reset();
    rollback.querySelector('.error').textContent = '';
    rollback.dataset.version = String(version);
    rollback.showModal();
  }
  rollback.querySelector('.cancel').addEventListener('click', () => rollback.close());
  rollback.querySelector('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { version: Number(rollback.dataset.version) };
    const comment = event.target.comment.value.trim();
    if (comment) body.comment = comment;
    try {
      await api('POST', '/policy/rollback', body);
      rollback.close();
      shell.notify('Version ' + body.version + ' is the active policy again.');
      load();
    } catch (refusal) {
      rollback.querySelector('.error').textContent = refusal.message;
    }
  });

  part('.compare').addEventListener('click', async () => {
    const from = main.querySelector('input[name=from]:checked');
    const to = main.querySelector('input[name=to]:checked');
    const output = part('.diff');
    if (!from || !to) {
      output.textContent = 'Choose a version to compare from and one to compare to.';
      return;
    }
    try {
      const diff = await api('GET', '/policy/diff?from=' + from.value + '&to=' + to.value);
      const items = [
        ...diff.added.map((name) => element('li', { class: 'added' }, element('strong', { text: name }), ' added')),
        ...diff.removed.map((name) => element('li', { class: 'removed' }, element('strong', { text: name }),
          ' removed')),
        ...diff.changed.map((policy) => element('li', { class: 'changed', 'data-policy': policy.name },
          element('strong', { text: policy.name }), ' changed:',
          element('ul', {}, ...policy.fields.map((field) => element('li', { text: field.summary }))))),
      ];
      if (diff.roles_changed) items.push(element('li', { text: 'The role groups changed.' }));
      output.replaceChildren(element('h3', { text: 'From version ' + diff.from + ' to version ' + diff.to }),
        items.length ? element('ul', {}, ...items) : element('p', { text: 'No difference.' }));
    } catch (refusal) {
      output.textContent = refusal.message;
    }
  });

  part('form.explain').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const output = part('.decision');
    const body = { operator: form.operator.value.trim(), machine: form.machine.value.trim(), mode: form.mode.value };
    if (!body.operator || !body.machine) {
      output.textContent = 'Name an operator and a machine.';
      return;
    }
    if (form.ticket.value.trim()) body.ticket = form.ticket.value.trim();
    if (form.at.value) body.at = new Date(form.at.value).toISOString().replace(/\.\d{3}Z$/, 'Z');
    try {
      const decision = await api('POST', '/policy/explain', body);
      output.dataset.allowed = String(decision.allowed);
      output.replaceChildren(
        element('p', { class: 'verdict', text: decision.allowed
          ? 'Allowed: ' + (decision.access === 'control' ? 'see and control' : 'see the screen') : 'Denied' }),
        element('p', { text: decision.explanation }),
        element('p', { class: 'quiet', text: (decision.policies.length ? 'Deciding: ' + decision.policies.join(', ')
          + '. ' : '') + (decision.policy_version ? 'Policy version ' + decision.policy_version + '.' : '') }));
    } catch (refusal) {
      output.dataset.allowed = 'unknown';
      output.textContent = refusal.message;
    }
  });

  load();
  return () => {};
}
