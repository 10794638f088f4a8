// Building elements from data, and saying times and states in words. Everything that comes from elsewhere is set
// as text (textContent, attributes), never parsed as HTML.

/**
 * Creates `<tag>` with `properties` (`class`, `text`, `title`, `href`, data-* and aria-* attributes, `on*`
 * listeners) and `children` (elements, or strings added as text).
 */
export function element(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** A clone of the page template `id`'s content. */
export function template(id) {
  return document.getElementById(id).content.cloneNode(true);
}

/**
 * The values of a DN's parts, most specific first, with escapes undone: "ou=Kiosks,ou=Workstations,dc=corp" →
 * [["ou", "Kiosks"], ["ou", "Workstations"], ["dc", "corp"]].
 */
export function dnParts(dn) {
  const parts = [];
  let current = '';
  for (let index = 0; index < dn.length; index += 1) {
    const character = dn[index];
    if (character === '\\' && index + 1 < dn.length) {
      const hex = dn.slice(index + 1, index + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        current += String.fromCharCode(parseInt(hex, 16));
        index += 2;
      } else {
        current += dn[index + 1];
        index += 1;
      }
    } else if (character === ',') {
      parts.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  parts.push(current);
  return parts.map((part) => {
    const equals = part.indexOf('=');
    return [part.slice(0, equals).trim().toLowerCase(), part.slice(equals + 1).trim()];
  });
}

/**
 * An entry's place, read from the top, without the domain: "Computers › Kiosks"; `skip` leaves out that many of the
 * most specific parts (1: where the entry lies, not its own name).
 */
export function dnPath(dn, skip = 0) {
  return dnParts(dn).slice(skip).filter(([type]) => type !== 'dc').map(([, value]) => value).reverse().join(' › ');
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});
const secondsFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  timeZoneName: 'short',
});
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** A time in the viewer's own zone, with the zone named: "5 Dec 2026, 14:32 UTC". */
export function formatTime(text) {
  if (!text) return '';
  return timeFormat.format(new Date(text));
}

/** A time to the second, in the viewer's zone, with the zone named: for the audit log. */
export function formatSeconds(text) {
  return text ? secondsFormat.format(new Date(text)) : '';
}

/** The time of day only, in the viewer's zone: "14:32". */
export function formatClock(text) {
  return text ? clockFormat.format(new Date(text)) : '';
}

/** How long from `now` until (or since) `text`, in words: "in 12 min", "3 h ago". */
export function relative(text, now = Date.now()) {
  if (!text) return '';
  const seconds = Math.round((new Date(text).getTime() - now) / 1000);
  const size = Math.abs(seconds);
  const amount = size < 60 ? size + ' s' : size < 3600 ? Math.round(size / 60) + ' min'
    : size < 86400 ? Math.round(size / 3600) + ' h' : Math.round(size / 86400) + ' days';
  return seconds >= 0 ? 'in ' + amount : amount + ' ago';
}

const endReasons = {
  helper_ended: 'the helper ended it',
  novice_ended: 'the person at the machine ended it',
  declined: 'the person at the machine declined',
  consent_timeout: 'nobody at the machine answered in time',
  admin_terminated: 'an administrator ended it',
  policy_revoked: 'the policy no longer allows it',
  membership_lost: 'the helper is no longer in a group the policy allows',
  max_duration: 'it reached the longest time the policy allows',
  agent_disconnected: 'the machine disconnected',
  server_restart: 'the server restarted',
};

/** Why a session ended, in words; `me` is the viewer's account name. */
export function endReason(session, me) {
  if (session.end_reason === 'helper_ended' && session.helper) {
    return session.helper === me ? 'you ended it' : session.helper + ' ended it';
  }
  return endReasons[session.end_reason] || 'it ended';
}

/** The session's state as a helper reads it: a short title and a sentence. */
export function describeState(session, me) {
  switch (session.state) {
    case 'offered': return ['Offer sent', 'Waiting for ' + session.machine + ' to receive the offer.'];
    case 'awaiting_consent':
      return ['Waiting for the person at ' + session.machine, 'They are being asked whether to accept your help.'];
    case 'viewing':
      return ['Viewing', 'You see the screen of ' + session.machine + '; you cannot use its keyboard or mouse.'];
    case 'control_requested':
      return ['Control requested', 'Waiting for the person at ' + session.machine + ' to answer.'];
    case 'controlling':
      return ['You have control', 'You are using the keyboard and mouse of ' + session.machine
        + '. The person there can take it back at any time (Esc).'];
    case 'ended': return ['Session ended', capitalize(endReason(session, me)) + '.'];
    default: return [session.state, ''];
  }
}

/** Whether the session still runs. */
export function isLive(session) {
  return session.state !== 'ended';
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
