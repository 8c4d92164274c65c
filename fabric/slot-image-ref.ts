/**
 * How a slot names its image on chain: by content, `sha256-` and the image's SHA-256 in unpadded
 * base64url (50 characters, inside the chain attribute's 64). A node runs an image only when the
 * file it holds hashes to exactly that: a name cannot be re-pointed at other bytes.
 */
const REF = /^sha256-([A-Za-z0-9_-]{43})$/;

/** The SHA-256 (hex) a ref names, or undefined when it is not a content reference. */
export function imageDigest(ref: string): string | undefined {
  const m = REF.exec(ref);
  if (!m) return undefined;
  const bytes = Buffer.from(m[1]!, 'base64url');
  // base64url decoding is lenient with the last character's spare bits: only the canonical form counts.
  if (bytes.length !== 32 || bytes.toString('base64url') !== m[1]) return undefined;
  return bytes.toString('hex');
}

/** The ref of an image whose SHA-256 is `hex`. */
export function imageRef(hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`not a SHA-256 in hex: ${hex}`);
  return `sha256-${Buffer.from(hex, 'hex').toString('base64url')}`;
}
