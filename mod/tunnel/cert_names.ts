/**
 * The names an X.509 certificate gives its holder: subject common names and SAN DNS names,
 * read from the DER. (`X509Certificate.subject` is a text rendering that does not escape
 * newlines here, so a CN of `x\nCN=edge-a` would read as two names; the DER cannot lie.)
 */

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

const CN_OID = [0x55, 0x04, 0x03];
const SAN_OID = [0x55, 0x1d, 0x11];
const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_OID = 0x06;
const TAG_OCTETS = 0x04;
const TAG_EXTENSIONS = 0xa3;
const TAG_DNS_NAME = 0x82;
/** UTF8String, PrintableString, IA5String: the string types a CN is written in. */
const TEXT_TAGS = new Set([0x0c, 0x13, 0x16]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

function readTlv(b: Uint8Array, o: number, limit: number): Tlv {
  if (o + 2 > limit) throw new Error("truncated DER");
  const tag = b[o];
  if ((tag & 0x1f) === 0x1f) throw new Error("unsupported DER tag");
  let len = b[o + 1];
  let p = o + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++];
  }
  if (p + len > limit) throw new Error("truncated DER");
  return { tag, start: p, end: p + len };
}

function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let o = t.start; o < t.end;) {
    const c = readTlv(b, o, t.end);
    out.push(c);
    o = c.end;
  }
  return out;
}

function isOid(b: Uint8Array, t: Tlv, oid: number[]): boolean {
  return t.tag === TAG_OID && t.end - t.start === oid.length &&
    oid.every((x, i) => b[t.start + i] === x);
}

export interface CertNames {
  /** Every CN of the subject, in order (Go and Kubernetes use the last). */
  commonNames: string[];
  /** SAN dNSName entries. */
  dnsNames: string[];
}

/** Reads the subject CNs and SAN DNS names; throws on DER it cannot walk. */
export function certNames(der: Uint8Array): CertNames {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== TAG_SEQUENCE) throw new Error("not a certificate");
  const tbs = children(der, cert)[0];
  if (!tbs || tbs.tag !== TAG_SEQUENCE) throw new Error("not a certificate");
  const f = children(der, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0; // explicit version
  // serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo
  const subject = f[i + 4];
  if (!subject || subject.tag !== TAG_SEQUENCE) throw new Error("no subject");
  const commonNames: string[] = [];
  for (const rdn of children(der, subject)) {
    if (rdn.tag !== TAG_SET) throw new Error("bad subject");
    for (const atv of children(der, rdn)) {
      const [oid, value] = children(der, atv);
      if (oid && value && isOid(der, oid, CN_OID) && TEXT_TAGS.has(value.tag)) {
        commonNames.push(utf8.decode(der.subarray(value.start, value.end)));
      }
    }
  }
  const dnsNames: string[] = [];
  const exts = f.slice(i + 6).find((t) => t.tag === TAG_EXTENSIONS);
  const list = exts ? children(der, exts)[0] : undefined;
  for (const ext of list ? children(der, list) : []) {
    const parts = children(der, ext);
    if (!parts[0] || !isOid(der, parts[0], SAN_OID)) continue;
    const octets = parts[parts.length - 1];
    if (octets.tag !== TAG_OCTETS) throw new Error("bad subjectAltName");
    const names = readTlv(der, octets.start, octets.end);
    for (const gn of children(der, names)) {
      if (gn.tag === TAG_DNS_NAME) dnsNames.push(utf8.decode(der.subarray(gn.start, gn.end)));
    }
  }
  return { commonNames, dnsNames };
}
