// OpenAI's error envelope — {"error": {"message", "type", "param", "code"}} — and the status each failure gets:
// 400 bad request (validation, an unsupported feature), 401 missing or wrong API key, 404 unknown route or model,
// 413 body too large, 429 queue full (with Retry-After), 500 engine failure, 503 loading or draining.
import type { FastifyError } from 'fastify';
import { EetError } from '../errors';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null): HttpError =>
  new HttpError(400, message, 'invalid_request_error', param, code);

export const unavailable = (message: string): HttpError => new HttpError(503, message, 'service_unavailable', null, 'service_unavailable');

/** The OpenAI request field an engine argument error names ("Expected … for maxNewTokens but received …"). */
const PARAM_OF_OPTION: Record<string, string> = {
  maxNewTokens: 'max_tokens', temperature: 'temperature', topK: 'top_k', topP: 'top_p', n: 'n', seed: 'seed',
  stop: 'stop', repetitionPenalty: 'repetition_penalty', presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty', topLogprobs: 'top_logprobs', prompt: 'prompt', prompts: 'prompt', texts: 'input',
};

/** Any failure → the HttpError to send. Engine and library errors keep their meaning; anything else is a 500. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof EetError) {
    switch (e.code) {
      case 'ERR_INVALID_ARG': {
        const m = /for ([A-Za-z]+)(?:\[\d+\])? but received/.exec(e.message);
        return badRequest(e.message, m ? (PARAM_OF_OPTION[m[1]] ?? null) : null);
      }
      case 'ERR_UNSUPPORTED': return badRequest(e.message, null, 'unsupported');
      case 'ERR_BUSY': return new HttpError(429, e.message, 'rate_limit_error', null, 'rate_limit_exceeded');
      case 'ERR_DISPOSED': return unavailable('The server is shutting down');
      default: return new HttpError(500, e.message, 'server_error', null, e.code.toLowerCase());
    }
  }
  const f = e as Partial<FastifyError> & { validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }> };
  if (f && f.validation && f.validation.length) {
    const v = f.validation[0];
    const missing = v.params?.missingProperty as string | undefined;
    const param = [...v.instancePath.split('/').filter(Boolean), ...(missing ? [missing] : [])].join('.') || null;
    return badRequest(`Invalid value for ${param ?? 'the request body'}: ${missing ? 'required' : v.message ?? 'invalid'}`, param);
  }
  if (f && f.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new HttpError(413, 'The request body is too large', 'invalid_request_error', null, 'request_too_large');
  }
  if (f && (f.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || f.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' || f.statusCode === 415)) {
    return new HttpError(415, 'Expected a JSON body (Content-Type: application/json)', 'invalid_request_error');
  }
  if (f && (f.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || f instanceof SyntaxError || f.statusCode === 400)) {
    return badRequest('We could not parse the JSON body of your request: it must be a valid JSON object');
  }
  return new HttpError(500, 'The server had an error while processing your request', 'server_error');
}
