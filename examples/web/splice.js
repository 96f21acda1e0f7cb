// Splices of text for the notes page: a splice {pos, del, ins} deletes
// del characters at pos and inserts ins there. Positions are UTF-16 code
// units (string indexes), as the uno client counts them in the browser.

// diff returns one splice turning a into b: the common prefix and suffix
// stay, so edits made elsewhere in the text at the same time merge. A
// surrogate pair (an emoji, say) is never split.
export function diff(a, b) {
  const n = Math.min(a.length, b.length);
  let p = 0;
  while (p < n && a.charCodeAt(p) === b.charCodeAt(p)) p++;
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++;
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--;
  return { pos: p, del: a.length - p - s, ins: b.slice(p, b.length - s) };
}

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

// apply returns t with the splice s made.
export function apply(t, s) {
  return t.slice(0, s.pos) + s.ins + t.slice(s.pos + s.del);
}

// mapPos moves position x of a text to where it is once the splice s is
// made: positions after s shift, positions inside what s deleted go to
// the end of what it inserted, and a position at s stays before it.
export function mapPos(x, s) {
  if (x <= s.pos) return x;
  if (x >= s.pos + s.del) return x + s.ins.length - s.del;
  return s.pos + s.ins.length;
}

// rebase moves the splice l, made on a text, past the splice r made on
// the same text elsewhere, so that it applies after r: l's text stays
// where it was relative to the text around it (before r's at the same
// place), and l deletes what it deleted except r's text (what both
// deleted is deleted once). It returns the splices to make in order: one,
// or two when l's deletion spans r's place.
export function rebase(l, r) {
  const end = l.pos + l.del;
  const rEnd = r.pos + r.del;
  const after = r.pos + r.ins.length; // where r's text ends once made
  if (end <= r.pos) return [l];
  if (l.pos >= rEnd) return [{ pos: l.pos + after - rEnd, del: l.del, ins: l.ins }];
  const out = [];
  if (end > rEnd) out.push({ pos: after, del: end - rEnd, ins: '' });
  out.push(l.pos < r.pos ? { pos: l.pos, del: r.pos - l.pos, ins: l.ins } : { pos: after, del: 0, ins: l.ins });
  return out;
}
