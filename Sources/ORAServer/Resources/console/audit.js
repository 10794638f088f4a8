// The audit log for the security team: a timeline filtered by time, operator, machine, event, session, outcome
// and text, a page at a time (the server pages by sequence number, never reading the whole log), export of exactly
// what is filtered, and verification of the chain.
import { api } from './api.js';
import { element, formatSeconds } from './format.js';
import { describeEvent, describePolicy, eventTime, outcomeBadge, rawEvent } from './events.js';
import { dailyBars, ranking } from './charts.js';
import { template } from './format.js';

const filterNames = ['operator', 'machine', 'event', 'session', 'outcome', 'q'];

/** The `since` of a relative range, from `now`. */
function rangeStart(range, now = new Date()) {
  switch (range) {
    case 'hour': return new Date(now.getTime() - 3600 * 1000);
    case 'today': return new Date(now.getFullYear(), now.getMonth(), now.getDate());
    case 'week': return new Date(now.getTime() - 7 * 86400 * 1000);
    case 'month': return new Date(now.getTime() - 30 * 86400 * 1000);
    default: return null;
  }
}

/** The API's query for the form's filters (without paging). */
function query(form) {
  const parameters = new URLSearchParams();
  if (form.range.value === 'custom') {
    if (form.since.value) parameters.set('since', new Date(form.since.value).toISOString());
    if (form.until.value) parameters.set('until', new Date(form.until.value).toISOString());
  } else {
    const since = rangeStart(form.range.value);
    if (since) parameters.set('since', since.toISOString());
  }
  for (const name of filterNames) {
    const value = form[name].value.trim();
    if (value) parameters.set(name, value);
  }
  return parameters;
}

/** Shows the audit log in `main`, with the filters of the page's address. */
export function show(main, shell) {
  main.append(template('audit-page'));
  const form = main.querySelector('form.filters');
  const body = main.querySelector('tbody');
  const more = main.querySelector('.more');
  const empty = main.querySelector('.empty');
  const error = main.querySelector('.error');
  let next = null;
  let current = null;

  // The address keeps the filters, so that a view can be bookmarked and shared.
  const address = new URLSearchParams(location.search);
  for (const name of ['range', 'since', 'until', ...filterNames]) {
    if (address.has(name)) form[name].value = address.get(name);
  }
  showCustom();

  function showCustom() {
    for (const label of form.querySelectorAll('.custom')) label.hidden = form.range.value !== 'custom';
  }

  function row(event) {
    const session = event.session
      ? element('a', { href: '/audit/sessions/' + event.session, text: event.session.slice(0, 8) + '…',
        title: event.session, 'aria-label': 'The story of session ' + event.session })
      : null;
    const policy = describePolicy(event.policy);
    return element('tr', { 'data-event': event.event, 'data-sequence': event.sequence },
      element('td', {}, eventTime(event)),
      element('td', {}, element('code', { text: event.event }), element('span', { class: 'quiet', text: ' ' + event.code })),
      element('td', {}, element('span', { class: 'summary', text: describeEvent(event) }),
        policy ? element('span', { class: 'quiet policy-line', text: 'Policy: ' + policy }) : null, rawEvent(event)),
      element('td', {}, outcomeBadge(event.outcome)),
      element('td', {}, session));
  }

  async function load(append) {
    error.textContent = '';
    const parameters = new URLSearchParams(current);
    parameters.set('limit', '100');
    if (append && next) parameters.set('before', next);
    try {
      const page = await api('GET', '/audit?' + parameters);
      const rows = page.events.map(row);
      if (append) body.append(...rows); else body.replaceChildren(...rows);
      next = page.next;
      more.hidden = !next;
      empty.hidden = body.children.length > 0;
    } catch (refusal) {
      error.textContent = refusal.message;
    }
  }

  /** The charts of the chosen time (the other filters narrow the timeline only). */
  async function overview() {
    const parameters = new URLSearchParams();
    if (current.has('since')) parameters.set('since', current.get('since'));
    if (current.has('until')) parameters.set('until', current.get('until'));
    if (!current.has('since')) parameters.set('since', new Date(Date.now() - 30 * 86400 * 1000).toISOString());
    parameters.set('zone', Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
    const charts = main.querySelector('.charts');
    try {
      const numbers = await api('GET', '/audit/statistics?' + parameters);
      charts.replaceChildren(
        dailyBars(numbers.days, 'Sessions offered and offers refused per day (' + numbers.zone + ')'),
        ranking('Operators who offered help most', numbers.top_operators),
        ranking('Machines offered help most', numbers.top_machines));
      const { granted, declined, timeout } = numbers.consent;
      const asked = granted + declined + timeout;
      main.querySelector('.consent-rate').textContent = asked === 0 ? 'No offer was answered in this time.'
        : 'Answers of the people at the machines: ' + granted + ' accepted, ' + declined + ' declined, ' + timeout
          + ' unanswered — ' + Math.round((100 * (declined + timeout)) / asked) + '% declined or unanswered.';
    } catch (refusal) {
      charts.replaceChildren(element('p', { class: 'error', text: refusal.message }));
    }
  }

  function search() {
    current = query(form);
    const kept = new URLSearchParams();
    for (const name of ['range', 'since', 'until', ...filterNames]) {
      if (form[name].value) kept.set(name, form[name].value);
    }
    history.replaceState(null, '', '/audit?' + kept);
    for (const format of ['csv', 'jsonl']) {
      const exported = new URLSearchParams(current);
      exported.set('format', format);
      main.querySelector('.export-' + format).href = '/api/v1/audit/export?' + exported;
    }
    next = null;
    load(false);
    overview();
  }

  form.range.addEventListener('change', showCustom);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    search();
  });
  more.addEventListener('click', () => load(true));
  main.querySelector('.verify').addEventListener('click', async (event) => {
    const state = main.querySelector('.chain-state');
    const chain = main.querySelector('.chain');
    event.target.disabled = true;
    state.textContent = 'Verifying every event and signed checkpoint…';
    try {
      const report = await api('GET', '/audit/verify');
      chain.dataset.intact = String(report.intact);
      state.textContent = report.intact
        ? 'Intact: ' + report.verified.toLocaleString() + ' events re-hashed, ' + report.checkpoints
          + ' signed checkpoint(s) match; verified ' + formatSeconds(new Date().toISOString()) + '.'
        : 'BROKEN at event ' + report.problem.sequence + ' (' + report.problem.kind + '): ' + report.problem.detail;
    } catch (refusal) {
      state.textContent = 'The chain could not be verified: ' + refusal.message;
    } finally {
      event.target.disabled = false;
    }
  });
  search();
  return () => {};
}
