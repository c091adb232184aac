// LZW as Go's compress/lzw writes it with order LSB and literal width 8 (memberlist's `lzwAlgo`):
// codes start 9 bits wide and grow to 12; 256 = clear, 257 = end; the writer opens with a clear code
// and, when the 4095 codes run out, sends a clear and starts over. No npm package speaks this exact
// dialect (GIF/TIFF/unix-compress variants differ in order, first code and the end code).

const LIT_WIDTH = 8;
const CLEAR = 1 << LIT_WIDTH;
const EOF = CLEAR + 1;
const MAX_WIDTH = 12;
const MAX_CODE = (1 << MAX_WIDTH) - 1;
const INVALID = 0xffff;

export class LzwError extends Error {
  override name = 'LzwError';
}

/** Decompresses a whole buffer; throws LzwError on an invalid code or past `maxOutput` bytes. */
export function lzwDecompress(input: Uint8Array, maxOutput = 64 << 20): Buffer {
  const suffix = new Uint8Array(1 << MAX_WIDTH);
  const prefix = new Uint16Array(1 << MAX_WIDTH);
  const stack = new Uint8Array(1 << MAX_WIDTH);
  const chunks: Buffer[] = [];
  let out = Buffer.allocUnsafe(Math.min(maxOutput, Math.max(256, input.length * 4)));
  let o = 0;
  let total = 0;
  const emit = (b: Uint8Array): void => {
    if (total + b.length > maxOutput) throw new LzwError(`lzw: output exceeds ${maxOutput} bytes`);
    if (o + b.length > out.length) {
      chunks.push(out.subarray(0, o));
      out = Buffer.allocUnsafe(Math.max(out.length, b.length));
      o = 0;
    }
    out.set(b, o);
    o += b.length;
    total += b.length;
  };

  let width = LIT_WIDTH + 1;
  let hi = EOF;
  let overflow = 1 << width;
  let last = INVALID;
  let bits = 0;
  let nBits = 0;
  let pos = 0;
  for (;;) {
    while (nBits < width) {
      if (pos >= input.length) throw new LzwError('lzw: input ends without an end code');
      bits |= (input[pos++] as number) << nBits;
      nBits += 8;
    }
    const code = bits & ((1 << width) - 1);
    bits >>>= width;
    nBits -= width;

    if (code < CLEAR) {
      emit(Uint8Array.of(code));
      if (last !== INVALID) {
        suffix[hi] = code;
        prefix[hi] = last;
      }
    } else if (code === CLEAR) {
      width = LIT_WIDTH + 1;
      hi = EOF;
      overflow = 1 << width;
      last = INVALID;
      continue;
    } else if (code === EOF) {
      break;
    } else if (code <= hi) {
      let c = code;
      let i = stack.length - 1;
      if (code === hi && last !== INVALID) {
        // The code being defined right now: the last expansion plus its own first byte.
        c = last;
        while (c >= CLEAR) c = prefix[c] as number;
        stack[i--] = c;
        c = last;
      }
      while (c >= CLEAR) {
        stack[i--] = suffix[c] as number;
        c = prefix[c] as number;
      }
      stack[i] = c;
      emit(stack.subarray(i));
      if (last !== INVALID) {
        suffix[hi] = c;
        prefix[hi] = last;
      }
    } else {
      throw new LzwError('lzw: invalid code');
    }
    last = code;
    hi++;
    if (hi >= overflow) {
      if (width === MAX_WIDTH) {
        last = INVALID;
        hi--;
      } else {
        width++;
        overflow = 1 << width;
      }
    }
  }
  chunks.push(out.subarray(0, o));
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Compresses like Go's `lzw.NewWriter(w, lzw.LSB, 8)` followed by Close(), byte for byte. */
export function lzwCompress(input: Uint8Array): Buffer {
  const out: number[] = [];
  let bits = 0;
  let nBits = 0;
  let width = LIT_WIDTH + 1;
  let hi = EOF;
  let overflow = 1 << width;
  let table = new Map<number, number>();
  const write = (code: number): void => {
    bits |= code << nBits;
    nBits += width;
    while (nBits >= 8) {
      out.push(bits & 0xff);
      bits >>>= 8;
      nBits -= 8;
    }
  };
  // Returns false when the codes ran out and the state was reset (Go's errOutOfCodes).
  const incHi = (): boolean => {
    hi++;
    if (hi === overflow) {
      width++;
      overflow <<= 1;
    }
    if (hi === MAX_CODE) {
      write(CLEAR);
      width = LIT_WIDTH + 1;
      hi = EOF;
      overflow = CLEAR << 1;
      table = new Map();
      return false;
    }
    return true;
  };

  write(CLEAR);
  if (input.length > 0) {
    let code = input[0] as number;
    for (let i = 1; i < input.length; i++) {
      const literal = input[i] as number;
      const key = code * 256 + literal;
      const hit = table.get(key);
      if (hit !== undefined) {
        code = hit;
        continue;
      }
      write(code);
      code = literal;
      if (!incHi()) continue;
      table.set(key, hi);
    }
    write(code);
    incHi();
  }
  write(EOF);
  if (nBits > 0) out.push(bits & 0xff);
  return Buffer.from(out);
}
