// Audit events in words, for the security team: who did what, on which machine, under which policy. Each event
// also keeps its raw JSON, which the pages show on demand.
import { element, endReason, formatSeconds } from './format.js';

function who(event) {
  return event.actor.name || event.actor.id;
}

function text(value) {
  return value === undefined || value === null ? '' : String(value);
}

const modes = { view: 'see the screen of', control: 'see and control' };

/** One sentence saying what the event records. */
export function describeEvent(event) {
  const d = event.details || {};
  const machine = event.machine || 'a machine';
  switch (event.event) {
    case 'operator.login':
      return who(event) + ' logged in' + (d.method === 'link' ? ' with a login link from ora open' : '');
    case 'operator.login_failed': return 'A login as ' + who(event) + ' was refused (' + text(d.reason) + ')';
    case 'operator.logout': return who(event) + ' logged out';
    case 'operator.session_revoked':
      return text(d.account) + "'s operator session was ended" + (d.reason ? ': ' + d.reason : '');
    case 'offer.requested':
      return who(event) + ' offered to ' + (modes[d.mode] || d.mode) + ' ' + machine
        + (d.ticket ? ' (ticket ' + d.ticket + ')' : '');
    case 'offer.denied':
      return who(event) + "'s offer to " + machine + ' was refused: ' + text(d.explanation || d.refused);
    case 'offer.delivered': return machine + ' received the offer and is asking its person';
    case 'consent.granted':
      return 'The person at ' + machine + ' accepted ' + (d.receipt && d.receipt.question === 'control'
        ? 'to give control' : 'the offer') + ' (answer signed by the machine)';
    case 'consent.declined': return 'The person at ' + machine + ' declined (answer signed by the machine)';
    case 'consent.timeout': return 'Nobody at ' + machine + ' answered in time';
    case 'consent.rejected': return 'An answer from ' + machine + ' was not accepted: ' + text(d.reason);
    case 'session.started': return 'The session on ' + machine + ' began';
    case 'session.ended':
      return 'The session on ' + machine + ' ended: ' + endReason({ end_reason: d.reason });
    case 'control.requested': return who(event) + ' asked for control of ' + machine;
    case 'control.granted': return 'The person at ' + machine + ' gave control';
    case 'control.denied': return 'Control of ' + machine + ' was not given';
    case 'control.stopped':
      return 'Control of ' + machine + ' ended' + (d.how ? ' (' + ({ esc: 'Esc pressed at the machine',
        ctrl_c: 'Ctrl+C at the machine', button: 'Stop control at the machine', helper: 'by the helper' }[d.how]
        || d.how) + ')' : '');
    case 'input.blocked': return text(d.messages) + ' input message(s) of ' + who(event) + ' dropped while view-only';
    case 'screen.opened': return who(event) + ' began to see the screen of ' + machine;
    case 'screen.closed': return 'A screen of ' + machine + ' closed' + (d.error ? ': ' + d.error : '');
    case 'screen.refused': return 'A screen connection was refused (' + text(d.reason) + ')';
    case 'chat.message':
      return (d.name || who(event)) + (d.from === 'person' ? ' (at the machine)' : '') + ' wrote: '
        + (d.text !== undefined ? '“' + text(d.text) + '”' : '(text not kept; ' + text(d.digest) + ')');
    case 'policy.applied': return who(event) + ' applied policy version ' + text(d.version);
    case 'policy.rolled_back': return who(event) + ' rolled the policy back to version ' + text(d.version);
    case 'agent.enrolled': return machine + ' enrolled';
    case 'agent.revoked': return who(event) + ' revoked ' + machine;
    case 'agent.token_created': return who(event) + ' created an enrollment token';
    case 'agent.rekeyed': return machine + ' enrolled again with a new key';
    case 'audit.checkpoint': return 'The chain head was signed';
    case 'audit.partition_detached': return 'Old events were detached for retention';
    case 'invitation.created':
      return text(d.asked_by) + ' at ' + machine + ' asked for help (' + text(d.channel) + ' invitation)';
    case 'invitation.sent': return machine + ' sent ' + text(d.asked_by) + "'s request to the " + text(d.recipient);
    case 'invitation.claimed': return who(event) + ' took ' + text(d.asked_by) + "'s request from the queue";
    case 'invitation.opened':
      return who(event) + (d.refused ? ' could not open an invitation of ' + machine + ': ' + text(d.explanation)
        : ' opened an invitation of ' + machine + '; the machine asked for the password');
    case 'invitation.password_failed': return 'A wrong password for an invitation of ' + machine + ' (signed by the machine)';
    case 'invitation.locked': return 'An invitation of ' + machine + ' locked after five wrong passwords';
    case 'invitation.taken': return machine + ' let ' + who(event) + ' in with the invitation (signed by the machine)';
    case 'invitation.revoked': return 'The person at ' + machine + ' revoked an invitation';
    case 'invitation.expired': return 'An invitation of ' + machine + ' expired';
    default: return event.event;
  }
}

/** The policy that decided, in words: "tier2-control-workstations (version 3)". */
export function describePolicy(policy) {
  if (!policy || !policy.names || policy.names.length === 0) return '';
  return policy.names.join(', ') + (policy.version ? ' (version ' + policy.version + ')' : '');
}

/** The outcome as a badge. */
export function outcomeBadge(outcome) {
  return element('span', { class: 'outcome ' + outcome, text: outcome });
}

/** The event's raw JSON, folded away until asked for. */
export function rawEvent(event) {
  return element('details', { class: 'raw' }, element('summary', { text: 'Raw JSON' }),
    element('pre', { text: JSON.stringify(event, null, 2) }));
}

/** When the event happened, in the viewer's zone, with the exact time on hover. */
export function eventTime(event) {
  return element('time', { datetime: event.time, title: event.time, text: formatSeconds(event.time) });
}
