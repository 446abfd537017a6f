// Server-Sent Events as OpenAI sends them: `data: <json>\n\n` per chunk, then `data: [DONE]\n\n`. Writes wait for
// the socket to drain when its buffer is full, so a slow client slows its own stream, not the server's memory.
import type { ServerResponse } from 'http';

export class SseWriter {
  readonly #res: ServerResponse;
  #open = true;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.once('close', () => { this.#open = false; });
  }

  get open(): boolean { return this.#open && !this.#res.writableEnded; }

  start(): void {
    this.#res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // proxies (nginx) must not hold the stream back
    });
  }

  async send(chunk: unknown): Promise<void> {
    await this.#write(`data: ${JSON.stringify(chunk)}\n\n`);
  }

  async done(): Promise<void> {
    await this.#write('data: [DONE]\n\n');
    if (this.open) this.#res.end();
  }

  /** An error after the stream started: OpenAI sends it as one more event, then the stream ends. */
  async fail(body: unknown): Promise<void> {
    await this.#write(`data: ${JSON.stringify(body)}\n\n`);
    if (this.open) this.#res.end();
  }

  async #write(text: string): Promise<void> {
    if (!this.open) return;
    if (this.#res.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.#res.off('drain', done);
        this.#res.off('close', done);
        resolve();
      };
      this.#res.once('drain', done);
      this.#res.once('close', done);
    });
  }
}
