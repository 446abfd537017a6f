// Chat templates (tokenizer_config.json's chat_template, GGUF's tokenizer.chat_template) are Jinja programs that come
// with the model file: `{% for i in range(100000000) %}` would freeze the event loop, a string doubled thirty times
// would exhaust the heap. So they are rendered off the JS thread in a helper process (@huggingface/jinja inside it),
// with a time budget per render and a capped heap. Not a worker thread: a worker whose heap limit is passed by one
// large allocation (range() builds its whole list) takes the whole process down with a fatal V8 OOM, where a process
// just dies and is replaced. A render over budget kills the helper (a fresh one serves the next render) and rejects
// with ModelFormatError. A render costs a message round trip (a fraction of a millisecond; the first one also starts
// the helper, tens of milliseconds); the helper does not keep the process alive while idle and exits with it.
import { ChildProcess, spawn } from 'child_process';
import { InvalidArgumentError, ModelFormatError } from '../errors';

export const TEMPLATE_LIMITS = {
  /** Wall time of one render, the helper's start included (a real chat template renders in well under 10 ms). */
  timeoutMs: 2000,
  /** The helper's old-generation heap. */
  heapMb: 256,
  /** Characters of rendered text (what a prompt could ever hold is far less; encoding bounds it again). */
  outputChars: 16 * 2 ** 20,
} as const;

// Parsed templates are cached per source text (a model has one or two); renders run one at a time. The helper exits
// when its parent goes away (the IPC channel closes).
const HELPER_SOURCE = `
const { Template } = require(process.argv[1]);
const parsed = new Map();
process.on('disconnect', () => process.exit(0));
process.on('message', ({ source, context, maxChars }) => {
  try {
    let t = parsed.get(source);
    if (!t) {
      t = new Template(source);
      if (parsed.size >= 8) parsed.clear();
      parsed.set(source, t);
    }
    const text = t.render(context);
    if (typeof text !== 'string') process.send({ error: 'it rendered ' + typeof text + ', not text' });
    else if (text.length > maxChars) process.send({ error: 'it rendered ' + text.length + ' characters, over the limit of ' + maxChars });
    else process.send({ text });
  } catch (e) {
    process.send({ error: e instanceof Error ? e.message : String(e) });
  }
});
`;

interface Job {
  source: string;
  context: Record<string, unknown>;
  resolve: (text: string) => void;
  reject: (e: Error) => void;
}

/** Renders jobs one at a time in the helper; replaces the helper after a render it had to stop. */
class TemplateRunner {
  #helper: ChildProcess | null = null;
  readonly #queue: Job[] = [];
  #current: Job | null = null;
  #timer: NodeJS.Timeout | null = null;

  render(source: string, context: Record<string, unknown>): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ source, context, resolve, reject });
      this.#next();
    });
  }

  #start(): ChildProcess {
    const h = spawn(process.execPath, [`--max-old-space-size=${TEMPLATE_LIMITS.heapMb}`, '-e', HELPER_SOURCE, require.resolve('@huggingface/jinja')], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      serialization: 'advanced',
    });
    h.on('message', (m: { text?: string; error?: string }) => {
      if (h !== this.#helper) return;
      if (m.error !== undefined) this.#finish(new ModelFormatError(`The chat template failed: ${m.error}`));
      else this.#finish(null, m.text);
    });
    const gone = (why: string): void => {
      if (h !== this.#helper) return;
      this.#helper = null;
      this.#finish(new ModelFormatError(`The chat template failed: ${why}`));
    };
    h.on('error', (e) => gone(`its helper process failed (${e.message})`));
    h.on('exit', (code, signal) => gone(code === 134 || signal === 'SIGABRT'
      ? `it needed more than ${TEMPLATE_LIMITS.heapMb} MB of memory` : `its helper process exited (${signal ?? code})`));
    return h;
  }

  /** Whether the helper keeps the event loop alive: only while a render is in flight. */
  #hold(h: ChildProcess, on: boolean): void {
    const channel = (h as ChildProcess & { channel?: { ref(): void; unref(): void } }).channel;
    if (on) { h.ref(); channel?.ref(); } else { h.unref(); channel?.unref(); }
  }

  #next(): void {
    if (this.#current) return;
    const job = this.#queue.shift();
    if (!job) {
      if (this.#helper) this.#hold(this.#helper, false);
      return;
    }
    this.#current = job;
    const h = (this.#helper ??= this.#start());
    this.#hold(h, true);
    try {
      h.send({ source: job.source, context: job.context, maxChars: TEMPLATE_LIMITS.outputChars });
    } catch (e) {
      // The context could not be copied (a function or a symbol among the messages' fields).
      this.#finish(new InvalidArgumentError(`Expected messages made of plain data (strings, numbers, arrays, objects) but copying them failed: ${(e as Error).message}`));
      return;
    }
    this.#timer = setTimeout(() => {
      const stuck = this.#helper;
      this.#helper = null;
      stuck?.kill('SIGKILL');
      this.#finish(new ModelFormatError(`The chat template did not finish within ${TEMPLATE_LIMITS.timeoutMs} ms (a loop that never ends?)`));
    }, TEMPLATE_LIMITS.timeoutMs);
  }

  #finish(error: Error | null, text?: string): void {
    const job = this.#current;
    if (!job) return;
    this.#current = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (error) job.reject(error);
    else job.resolve(text!);
    this.#next();
  }
}

let runner: TemplateRunner | null = null;

/** Renders a Jinja template with the context in the helper process, within TEMPLATE_LIMITS. */
export function renderTemplate(source: string, context: Record<string, unknown>): Promise<string> {
  runner ??= new TemplateRunner();
  return runner.render(source, context);
}
