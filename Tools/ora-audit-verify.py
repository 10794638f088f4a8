#!/usr/bin/env python3
"""Re-verify an ora audit export without ora.

Reads the JSON lines `ora audit export --format jsonl` writes (or GET /api/v1/audit/export) and checks, for every
event, that SHA-256(previous hash || canonical encoding) is its hash, that it links to the event before it and that
no sequence number is missing (Docs/AuditEvents.md specifies the encoding). With --checkpoint, also checks that a
checkpoint (the JSON `ora audit checkpoint` prints) matches the export and that its Ed25519 signature is valid, using
the openssl command. Only the Python standard library is needed.

Exit status: 0 intact, 1 broken (the first bad event is named), 2 the input cannot be read.
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def canonical(event):
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def broken(message):
    print(f"NOT intact: {message}")
    sys.exit(1)


def verify_signature(checkpoint):
    message = json.dumps(
        {"hash": checkpoint["hash"], "sequence": checkpoint["sequence"], "time": checkpoint["time"]},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    with tempfile.TemporaryDirectory() as directory:
        paths = {name: os.path.join(directory, name) for name in ("key.der", "message", "signature")}
        with open(paths["key.der"], "wb") as file:
            file.write(ED25519_SPKI_PREFIX + base64.b64decode(checkpoint["public_key"]))
        with open(paths["message"], "wb") as file:
            file.write(message)
        with open(paths["signature"], "wb") as file:
            file.write(base64.b64decode(checkpoint["signature"]))
        result = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", paths["key.der"], "-rawin",
             "-in", paths["message"], "-sigfile", paths["signature"]], capture_output=True)
        return result.returncode == 0


def main():
    parser = argparse.ArgumentParser(description="Re-verify an ora audit export (JSON lines).")
    parser.add_argument("export", help="the export file, or - for standard input")
    parser.add_argument("--checkpoint", help="a checkpoint JSON file to check against the export")
    arguments = parser.parse_args()

    checkpoint = None
    if arguments.checkpoint:
        try:
            with open(arguments.checkpoint, encoding="utf-8") as file:
                checkpoint = json.load(file)
        except (OSError, ValueError) as error:
            print(f"cannot read the checkpoint: {error}", file=sys.stderr)
            sys.exit(2)

    source = sys.stdin if arguments.export == "-" else open(arguments.export, encoding="utf-8")
    previous_hash, next_sequence, count, first = None, None, 0, None
    checkpoint_found = False
    for line_number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            stored_hash = event.pop("hash")
            stored_previous = event.pop("previous_hash")
            sequence = event["sequence"]
        except (ValueError, KeyError) as error:
            print(f"line {line_number} is not an ora audit event: {error}", file=sys.stderr)
            sys.exit(2)
        name = f"event {sequence} ({event.get('id')})"
        if next_sequence is not None and sequence != next_sequence:
            broken(f"{name}: expected event {next_sequence} next; events are missing or out of order")
        if previous_hash is not None and stored_previous != previous_hash:
            broken(f"{name}: its previous hash is not the hash of event {sequence - 1}")
        digest = hashlib.sha256(bytes.fromhex(stored_previous) + canonical(event)).hexdigest()
        if digest != stored_hash:
            broken(f"{name}: its contents do not match its hash")
        if checkpoint is not None and sequence == checkpoint["sequence"]:
            if stored_hash != checkpoint["hash"]:
                broken(f"{name}: the checkpoint has a different hash for it")
            checkpoint_found = True
        first = sequence if first is None else first
        previous_hash, next_sequence, count = stored_hash, sequence + 1, count + 1

    if checkpoint is not None:
        if not checkpoint_found:
            broken(f"the export does not contain event {checkpoint['sequence']}, which the checkpoint covers")
        if not verify_signature(checkpoint):
            broken("the checkpoint's signature is not valid")
    span = f"{first}-{next_sequence - 1}" if count else "none"
    suffix = ", checkpoint matches and its signature is valid" if checkpoint is not None else ""
    print(f"intact: {count} events ({span}), last hash {previous_hash or '-'}{suffix}")


if __name__ == "__main__":
    main()
