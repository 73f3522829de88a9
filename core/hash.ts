/**
 * SHA-256 for `core/`, in pure JavaScript (@noble/hashes): the workflows hash what they were
 * given (the plan an approval names) where node:crypto does not exist.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}
