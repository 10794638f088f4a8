// Opening an invitation in the browser, as `ora invitation open` does: the password the person tells the helper is
// turned into a proof here — scrypt with the parameters of the invitation the machine signed, HMAC-SHA256 over the
// machine's challenge — and sealed to the machine's device key (P-256 ECDH, HKDF-SHA256, AES-GCM). The server
// relays a box it cannot open; the password and the key never leave this page.
import { api } from './api.js';

const encoder = new TextEncoder();

function base64(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function unbase64(text) {
  return Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
}

async function pbkdf2(password, salt, length) {
  const key = await crypto.subtle.importKey('raw', password, 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: 1 }, key, length * 8);
  return new Uint8Array(bits);
}

const rotate = (value, by) => (value << by) | (value >>> (32 - by));

/** Salsa20/8 on the 16 words of `block`, in place. */
function salsa(block, x) {
  x.set(block);
  for (let round = 0; round < 8; round += 2) {
    x[4] ^= rotate(x[0] + x[12], 7); x[8] ^= rotate(x[4] + x[0], 9);
    x[12] ^= rotate(x[8] + x[4], 13); x[0] ^= rotate(x[12] + x[8], 18);
    x[9] ^= rotate(x[5] + x[1], 7); x[13] ^= rotate(x[9] + x[5], 9);
    x[1] ^= rotate(x[13] + x[9], 13); x[5] ^= rotate(x[1] + x[13], 18);
    x[14] ^= rotate(x[10] + x[6], 7); x[2] ^= rotate(x[14] + x[10], 9);
    x[6] ^= rotate(x[2] + x[14], 13); x[10] ^= rotate(x[6] + x[2], 18);
    x[3] ^= rotate(x[15] + x[11], 7); x[7] ^= rotate(x[3] + x[15], 9);
    x[11] ^= rotate(x[7] + x[3], 13); x[15] ^= rotate(x[11] + x[7], 18);
    x[1] ^= rotate(x[0] + x[3], 7); x[2] ^= rotate(x[1] + x[0], 9);
    x[3] ^= rotate(x[2] + x[1], 13); x[0] ^= rotate(x[3] + x[2], 18);
    x[6] ^= rotate(x[5] + x[4], 7); x[7] ^= rotate(x[6] + x[5], 9);
    x[4] ^= rotate(x[7] + x[6], 13); x[5] ^= rotate(x[4] + x[7], 18);
    x[11] ^= rotate(x[10] + x[9], 7); x[8] ^= rotate(x[11] + x[10], 9);
    x[9] ^= rotate(x[8] + x[11], 13); x[10] ^= rotate(x[9] + x[8], 18);
    x[12] ^= rotate(x[15] + x[14], 7); x[13] ^= rotate(x[12] + x[15], 9);
    x[14] ^= rotate(x[13] + x[12], 13); x[15] ^= rotate(x[14] + x[13], 18);
  }
  for (let i = 0; i < 16; i++) block[i] = (block[i] + x[i]) | 0;
}

/** scrypt's BlockMix: the 2r blocks of `input` into `output`, even ones first. */
function blockMix(input, output, r, x, scratch) {
  x.set(input.subarray((2 * r - 1) * 16, 2 * r * 16));
  for (let i = 0; i < 2 * r; i++) {
    for (let j = 0; j < 16; j++) x[j] ^= input[i * 16 + j];
    salsa(x, scratch);
    output.set(x, ((i & 1) ? r + (i >> 1) : (i >> 1)) * 16);
  }
}

/** scrypt's ROMix on the words of one block of 128·r bytes, in place. */
function roMix(block, n, r) {
  const words = 32 * r;
  const table = new Uint32Array(words * n);
  let current = block.slice();
  let next = new Uint32Array(words);
  const x = new Uint32Array(16);
  const scratch = new Uint32Array(16);
  for (let i = 0; i < n; i++) {
    table.set(current, i * words);
    blockMix(current, next, r, x, scratch);
    [current, next] = [next, current];
  }
  for (let i = 0; i < n; i++) {
    const j = current[(2 * r - 1) * 16] & (n - 1);
    for (let k = 0; k < words; k++) current[k] ^= table[j * words + k];
    blockMix(current, next, r, x, scratch);
    [current, next] = [next, current];
  }
  block.set(current);
}

/** scrypt (RFC 7914) of `password` (bytes), as the machine derives the invitation's key. */
export async function scrypt(password, salt, n, r, p, length) {
  const bytes = await pbkdf2(password, salt, p * 128 * r);
  const view = new DataView(bytes.buffer);
  for (let part = 0; part < p; part++) {
    const words = new Uint32Array(32 * r);
    const offset = part * 128 * r;
    for (let i = 0; i < words.length; i++) words[i] = view.getUint32(offset + 4 * i, true);
    roMix(words, n, r);
    for (let i = 0; i < words.length; i++) view.setUint32(offset + 4 * i, words[i], true);
  }
  return pbkdf2(password, bytes, length);
}

/** The bytes the proof covers: the challenge as the machine encodes it. */
export function challengeMessage(challenge) {
  const text = (value) => JSON.stringify(String(value));
  return encoder.encode('{"invitation":' + text(challenge.invitation.toLowerCase()) + ',"nonce":'
    + text(challenge.nonce) + ',"operator_dn":' + text(challenge.operator_dn)
    + ',"purpose":"ora.invitation.proof.v1","session":' + text(challenge.session.toLowerCase()) + '}');
}

/** The proof of `password` for `challenge`, sealed to the machine's key (`machine_key` of the signed invitation). */
export async function sealedProof(password, parameters, challenge, machineKey) {
  if (parameters.kdf !== 'scrypt' || parameters.n < 16384 || parameters.n > 1048576 || parameters.r > 16
    || parameters.p > 4) {
    throw new Error("the invitation's password settings are not ones ora uses");
  }
  const message = challengeMessage(challenge);
  const key = await scrypt(encoder.encode(password.normalize('NFC')), unbase64(parameters.salt), parameters.n,
    parameters.r, parameters.p, 32);
  const hmac = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const proof = new Uint8Array(await crypto.subtle.sign('HMAC', hmac, message));
  const machine = await crypto.subtle.importKey('spki', unbase64(machineKey), { name: 'ECDH', namedCurve: 'P-256' },
    false, []);
  const ephemeral = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
  const secret = await crypto.subtle.deriveBits({ name: 'ECDH', public: machine }, ephemeral.privateKey, 256);
  const material = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveKey']);
  const box = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: await crypto.subtle.digest('SHA-256', message),
      info: encoder.encode('ora.invitation.proof.seal.v1') },
    material, { name: 'AES-GCM', length: 256 }, false, ['encrypt']);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: message },
    box, proof));
  const combined = new Uint8Array(nonce.length + sealed.length);
  combined.set(nonce);
  combined.set(sealed, nonce.length);
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', ephemeral.publicKey));
  return { ephemeral_key: base64(raw), box: base64(combined) };
}

/**
 * Opens `file` (an invitation as the machine signed it) for a session of `mode`: the server's checks, then, with a
 * password, the machine's challenge answered with `password`. Resolves to the session offered.
 */
export async function openInvitation(file, { mode, ticket, reason, password }) {
  const opening = await api('POST', '/invitations/open', { invitation: file, mode, ticket, reason });
  if (opening.offered) return opening.offered;
  if (!opening.challenge) throw new Error("the server's answer holds no challenge for this invitation");
  if (opening.challenge.invitation.toLowerCase() !== file.invitation.id.toLowerCase()) {
    throw new Error('the challenge is not for this invitation');
  }
  // The parameters come from the signed file, never from the server.
  const proof = await sealedProof(password, file.invitation.password, opening.challenge, file.invitation.machine_key);
  return api('POST', '/invitations/proof', { session: opening.session, machine: opening.machine, proof });
}

/**
 * Opens `file` with what `form` holds (its `password`, `ticket` and `control` fields), then shows the session; a
 * refusal is told in the notice line, unless the page was left (`signal`). The password is emptied either way.
 */
export async function openFromForm(file, form, shell, signal) {
  const submit = form.querySelector('button[type=submit]');
  const password = form.querySelector('input[name=password]');
  submit.disabled = true;
  shell.notify('Checking the invitation with ' + file.invitation.machine.toUpperCase() + '…');
  try {
    const session = await openInvitation(file, {
      mode: form.querySelector('input[name=control]').checked ? 'control' : 'view',
      ticket: form.querySelector('input[name=ticket]').value || undefined,
      password: password?.value ?? '',
    });
    if (password) password.value = '';
    shell.notify('');
    shell.navigate('/sessions/' + session.id.toLowerCase());
  } catch (refusal) {
    if (password) password.value = '';
    if (!signal.aborted) shell.notify(refusal.message);
    submit.disabled = false;
  }
}
