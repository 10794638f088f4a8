// A session's whole story on one page: every event of it in order, in words, each with its raw JSON.
import { api } from './api.js';
import { describeEvent, describePolicy, eventTime, outcomeBadge, rawEvent } from './events.js';
import { element, endReason, template } from './format.js';

/** Shows the story of session `match[1]` in `main`. */
export function show(main, shell, match) {
  const id = match[1].toLowerCase();
  main.append(template('story-page'));
  const part = (selector) => main.querySelector(selector);
  part('.id').textContent = id;
  for (const format of ['csv', 'jsonl']) {
    part('.export-' + format).href = '/api/v1/audit/export?format=' + format + '&session=' + id;
  }
  (async () => {
    try {
      const page = await api('GET', '/audit/sessions/' + id);
      const events = page.events;
      if (events.length === 0) {
        part('.error').textContent = 'The audit log has no event of this session.';
        return;
      }
      const offer = events.find((event) => event.event === 'offer.requested' || event.event === 'offer.denied');
      const ended = events.find((event) => event.event === 'session.ended');
      part('.machine').textContent = events.find((event) => event.machine)?.machine || '—';
      part('.helper').textContent = offer ? (offer.actor.name || offer.actor.id) : '—';
      part('.policy').textContent = describePolicy(offer && offer.policy) || '—';
      part('.ticket').textContent = (offer && offer.details.ticket) || '—';
      part('.result').textContent = ended
        ? 'ended: ' + endReason({ end_reason: ended.details.reason, helper: offer && offer.actor.name })
        : offer && offer.event === 'offer.denied' ? 'refused' : 'still running, or its end is not recorded yet';
      part('.timeline').replaceChildren(...events.map((event) => element('li', { 'data-event': event.event },
        eventTime(event), ' ', outcomeBadge(event.outcome), ' ',
        element('strong', { text: describeEvent(event) }), ' ',
        element('code', { class: 'quiet', text: event.event }), rawEvent(event))));
    } catch (refusal) {
      part('.error').textContent = refusal.message;
    }
  })();
  return () => {};
}
