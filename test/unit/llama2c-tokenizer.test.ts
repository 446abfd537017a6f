// The llama2.c tokenizer against run.c's reference encodings and outputs (stories260K README), plus malformed files.
import * as fs from 'fs';
import { ModelFormatError } from '../../lib/errors';
import { BOS, EOS, Llama2cTokenizer, loadLlama2cTokenizer, parseLlama2cTokenizer } from '../../lib/tokenizers/llama2c';
import { TOKENIZER, references, unconditional } from '../util/stories260k';

let tok: Llama2cTokenizer;
beforeAll(async () => { tok = await loadLlama2cTokenizer(TOKENIZER, 512); });

describe('run.c encode', () => {
  for (const ref of references()) {
    test(`encode(${JSON.stringify(ref.prompt)}) gives the README's prompt ids`, () => {
      expect(tok.encode(ref.prompt)).toEqual(ref.promptIds);
    });
  }
  test('the empty text is BOS alone (no dummy prefix)', () => {
    expect(tok.encode('')).toEqual([BOS]);
  });
  test('a code point with no piece falls back to its UTF-8 bytes (+3)', () => {
    const ids = tok.encode('😀');
    expect(ids[0]).toBe(BOS);
    expect(ids.slice(-4)).toEqual([...Buffer.from('😀', 'utf8')].map((b) => b + 3));
  });
});

describe('run.c decode', () => {
  for (const ref of references()) {
    test(`decode of the printed ids for ${JSON.stringify(ref.prompt)} gives run.c's stdout`, () => {
      expect(tok.decode(ref.printedIds) + '\n').toBe(ref.stdout);
    });
  }
  test('the unconditional run printed the same text as with "Once upon a time"', () => {
    const u = unconditional();
    const ref = references().find((r) => r.prompt === u.sameAsPrompt)!;
    expect(u.stdout).toBe(ref.stdout);
  });
  test('a piece after BOS loses its leading space; elsewhere it keeps it', () => {
    expect(tok.decode([403])).toBe('Once');
    expect(tok.decode([403], 13)).toBe(' Once');
  });
  test('<0xXX> pieces are raw bytes; non-printable single bytes are dropped (safe_printf)', () => {
    expect(tok.decode([13])).toBe('\n');
    expect(tok.decode([0x41 + 3])).toBe('A');
    expect(tok.decode([0x01 + 3, 0x00 + 3, 0x7f + 3])).toBe('');
    expect(tok.decode([BOS, EOS])).toBe('');
  });
  test('streaming: a character split over byte pieces comes out when complete', () => {
    const d = tok.decoder(13);
    const bytes = [...Buffer.from('✓', 'utf8')].map((b) => b + 3);
    expect(bytes.map((id) => d.push(id))).toEqual(['', '', '✓']);
    expect(d.flush()).toBe('');
  });
  test('an incomplete character at the end becomes U+FFFD on flush', () => {
    const d = tok.decoder(13);
    expect(d.push(0xe2 + 3)).toBe('');
    expect(d.flush()).toBe('\uFFFD');
  });
});

describe('round trips', () => {
  const texts = ['Once upon a time', 'Hello, world!', '  two leading spaces', 'tabs\tand\nnewlines\n', 'héllo wörld ✓ 😀 日本', 'a', ' '];
  for (const t of texts) {
    test(`decode(encode(${JSON.stringify(t)})) === text`, () => {
      const ids = tok.encode(t);
      expect(ids[0]).toBe(BOS);
      expect(tok.decode(ids.slice(1))).toBe(t);
    });
  }
  test('long text: encode is exact and fast enough', () => {
    const t = references().map((r) => r.stdout).join('').repeat(4);
    const t0 = Date.now();
    const ids = tok.encode(t);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(tok.decode(ids.slice(1))).toBe(t);
  });
});

describe('malformed tokenizer files', () => {
  const good = fs.readFileSync(TOKENIZER);
  const parse = (b: Buffer, vocab?: number): Llama2cTokenizer => parseLlama2cTokenizer(b, 'tok.bin', vocab);
  const expectFormat = (f: () => unknown, re: RegExp): void => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).code).toBe('ERR_MODEL_FORMAT');
    expect((err as Error).message).toMatch(re);
  };
  test('the real file parses with 512 pieces', () => {
    expect(parse(good, 512).vocabSize).toBe(512);
    expect(parse(good).maxTokenLength).toBe(7);
  });
  test('shorter than the header', () => expectFormat(() => parse(good.subarray(0, 3)), /fewer than the 4-byte max_token_length header/));
  test('truncated inside a piece header', () => expectFormat(() => parse(good.subarray(0, 4 + 5)), /truncated in the header of piece 0/));
  test('truncated inside piece bytes', () => expectFormat(() => parse(good.subarray(0, good.length - 1), 512), /truncated in piece 511/));
  test('fewer pieces than the vocab', () => {
    // cut exactly after piece 300
    let off = 4;
    for (let i = 0; i < 300; i++) off += 8 + good.readInt32LE(off + 4);
    expectFormat(() => parse(good.subarray(0, off), 512), /it has 300 pieces but the model's vocab_size is 512/);
  });
  test('more bytes than the vocab calls for', () => expectFormat(() => parse(Buffer.concat([good, Buffer.alloc(12)]), 512), /12 bytes follow the 512 pieces/));
  test('negative piece length', () => {
    const b = Buffer.from(good);
    b.writeInt32LE(-1, 8);
    expectFormat(() => parse(b), /piece 0 has length -1/);
  });
  test('piece longer than max_token_length', () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(3, 0);
    expectFormat(() => parse(b), /piece 0 has length 5, expected 0\.\.3/);
  });
  test('max_token_length 0', () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(0, 0);
    expectFormat(() => parse(b), /max_token_length is 0/);
  });
  test('non-finite score', () => {
    const b = Buffer.from(good);
    b.writeFloatLE(NaN, 4);
    expectFormat(() => parse(b), /piece 0 has a non-finite score NaN/);
  });
  test('byte pieces not at ids 3..258', () => {
    const b = Buffer.from(good);
    let off = 4;
    for (let i = 0; i < 3; i++) off += 8 + b.readInt32LE(off + 4);
    b.write('<0x01>', off + 8, 'latin1'); // id 3 should be <0x00>
    expectFormat(() => parse(b), /piece 3 should be the byte piece <0x00>/);
  });
  test('a missing file', async () => {
    await expect(loadLlama2cTokenizer('/nonexistent/tok.bin')).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/Cannot read the tokenizer/) });
  });
});
