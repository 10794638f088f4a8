// Opening an invitation file (.orainvite) that the person at a machine sent by e-mail or handed over: dropped on the
// page, chosen, or carried in the fragment of the link in the invitation's mail (which no server sees). The page
// shows what the file says, as text; the server checks that its machine signed it with its enrolled key, the
// machine checks the password proved from this page, and the person there is asked before anyone sees the screen.
import { element, formatTime, template } from './format.js';
import { openFromForm } from './invitation.js';

/** The largest file read: an invitation is a few hundred bytes (the server takes at most 16 KiB). */
const largest = 16 * 1024;

const channels = {
  email: 'by e-mail',
  file: 'as a file',
  helpdesk: "to the helpdesk's queue",
};

/** `text` in the fragment's form (base64 for URLs, no padding) as text. */
function fromFragment(text) {
  const standard = text.replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Uint8Array.from(atob(standard + '='.repeat((4 - (standard.length % 4)) % 4)), (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** Shows the page in `main`. */
export function show(main, shell) {
  main.append(template('invitation-open-page'));
  const drop = main.querySelector('.drop');
  const chooser = main.querySelector('input[type=file]');
  const details = main.querySelector('.invitation');
  const stop = new AbortController();
  let current = null;

  function refuse(message) {
    current = null;
    details.hidden = true;
    shell.notify(message);
  }

  /** Reads `text` (from `source`, for the messages) as an invitation file and shows it with its form. */
  function read(text, source) {
    let file;
    try {
      file = JSON.parse(text);
    } catch {
      return refuse(source + ' is not an ora invitation: it is not JSON.');
    }
    const invitation = file?.invitation;
    if (file?.format !== 'ora-invitation/1' || typeof file.signature !== 'string' || typeof invitation !== 'object'
      || typeof invitation.machine !== 'string' || typeof invitation.asked_by !== 'object') {
      return refuse(source + ' is not an ora invitation (ora-invitation/1).');
    }
    shell.notify('');
    current = file;
    const machine = invitation.machine.toUpperCase();
    details.querySelector('.machine').textContent = machine;
    details.querySelector('.asked-by').textContent =
      String(invitation.asked_by.display_name) + ' (' + String(invitation.asked_by.account) + ')';
    details.querySelector('.message').textContent = invitation.message || '—';
    details.querySelector('.channel').textContent = (channels[invitation.channel] || String(invitation.channel))
      + (invitation.recipient ? ' to ' + invitation.recipient : '');
    const expired = Date.parse(invitation.expires_at) <= Date.now();
    details.querySelector('.expires').textContent = formatTime(invitation.expires_at)
      + (expired ? " — expired by this computer's clock (the machine's clock decides)" : '');
    const form = details.querySelector('form');
    const password = form.querySelector('input[name=password]');
    const passwordLabel = form.querySelector('.password');
    passwordLabel.hidden = !invitation.password;
    passwordLabel.querySelector('.who').textContent = String(invitation.asked_by.display_name);
    form.querySelector('.no-password').hidden = Boolean(invitation.password);
    form.querySelector('.check').textContent = 'The server checks that ' + machine + ' signed it with its enrolled '
      + 'key; ' + machine + ' checks the password and asks ' + String(invitation.asked_by.display_name)
      + ' before you see the screen.';
    const queued = invitation.channel === 'helpdesk';
    form.querySelector('.queued').hidden = !queued;
    form.querySelector('button[type=submit]').disabled = queued;
    details.hidden = false;
    (invitation.password ? password : form.querySelector('input[name=ticket]')).focus();
  }

  function readFile(file) {
    if (!file) return;
    if (file.size > largest) return refuse(file.name + ' is not an ora invitation: it is larger than 16 KiB.');
    file.text().then((text) => read(text, file.name), () => refuse(file.name + ' could not be read.'));
  }

  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  }, { signal: stop.signal });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'), { signal: stop.signal });
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    readFile(event.dataTransfer?.files?.[0]);
  }, { signal: stop.signal });
  // A file dropped beside the drop zone is not opened by the browser in place of the console.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => event.preventDefault(), { signal: stop.signal });
  }
  chooser.addEventListener('change', () => {
    readFile(chooser.files[0]);
    chooser.value = '';
  }, { signal: stop.signal });

  const form = details.querySelector('form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (current) openFromForm(current, form, shell, stop.signal);
  }, { signal: stop.signal });

  // From the link in the invitation's mail: the file travels in the fragment. It is read once and then removed
  // from the address, so that it does not stay in the history.
  if (location.hash.length > 1) {
    const fragment = location.hash.slice(1);
    history.replaceState(null, '', location.pathname);
    let text = null;
    try {
      text = fromFragment(fragment);
    } catch {
      refuse('The link does not hold an invitation: it may have been cut short. Save the file from the mail and '
        + 'drop it here instead.');
    }
    if (text !== null) read(text, 'The link');
  }
  return () => stop.abort();
}
