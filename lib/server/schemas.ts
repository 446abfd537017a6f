// JSON schemas of the request bodies (Fastify validates each body with Ajv before a handler runs; no type
// coercion: a string where a number belongs is a 400 naming the field, as OpenAI answers). Fields OpenAI defines
// that the engine cannot honour yet are accepted by type here and refused with a clear 400 by the handlers; fields
// nobody defines are ignored, as OpenAI does. Every number is bounded here, before it can reach native code.
const LIMIT_TEXT = 4_000_000; // characters of one text field (the body limit bounds the whole request anyway)
const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({ anyOf: [schema, { type: 'null' }] });
const tokenIds = { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } };

/** Sampling fields shared by /v1/completions and /v1/chat/completions. */
const sampling = {
  model: { type: 'string', minLength: 1, maxLength: 512 },
  temperature: nullable({ type: 'number', minimum: 0, maximum: 2 }),
  top_p: nullable({ type: 'number', exclusiveMinimum: 0, maximum: 1 }),
  top_k: nullable({ type: 'integer', minimum: -1, maximum: 2 ** 24 }),
  n: nullable({ type: 'integer', minimum: 1, maximum: 128 }),
  stop: nullable({
    anyOf: [{ type: 'string', minLength: 1, maxLength: 1024 }, { type: 'array', maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 1024 } }],
  }),
  seed: nullable({ type: 'integer', minimum: -(2 ** 63), maximum: 2 ** 64 - 1 }),
  presence_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  frequency_penalty: nullable({ type: 'number', minimum: -2, maximum: 2 }),
  repetition_penalty: nullable({ type: 'number', minimum: 0.01, maximum: 100 }), // limits().maxRepetitionPenalty
  max_tokens: nullable({ type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 }),
  stream: nullable({ type: 'boolean' }),
  stream_options: nullable({ type: 'object', properties: { include_usage: { type: 'boolean' } } }),
  logit_bias: nullable({ type: 'object' }),
  ignore_eos: nullable({ type: 'boolean' }), // extension (as vLLM's): run to max_tokens whatever the model says
  user: { type: 'string', maxLength: 1024 },
};

export const completionBody = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: 'string', maxLength: LIMIT_TEXT },
        { type: 'array', minItems: 1, maxItems: 1024, items: { type: 'string', maxLength: LIMIT_TEXT } },
        tokenIds,
        { type: 'array', minItems: 1, maxItems: 1024, items: tokenIds },
      ],
    },
    logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
    echo: nullable({ type: 'boolean' }),
    suffix: nullable({ type: 'string', maxLength: LIMIT_TEXT }),
    best_of: nullable({ type: 'integer', minimum: 1, maximum: 128 }),
  },
} as const;

const contentPart = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string', maxLength: 64 }, text: { type: 'string', maxLength: LIMIT_TEXT } },
};

export const chatBody = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...sampling,
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: 4096,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
          content: nullable({ anyOf: [{ type: 'string', maxLength: LIMIT_TEXT }, { type: 'array', maxItems: 256, items: contentPart }] }),
          name: { type: 'string', maxLength: 256 },
        },
      },
    },
    max_completion_tokens: nullable({ type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 }),
    logprobs: nullable({ type: 'boolean' }),
    top_logprobs: nullable({ type: 'integer', minimum: 0, maximum: 20 }),
    response_format: nullable({ type: 'object', required: ['type'], properties: { type: { type: 'string', maxLength: 64 } } }),
    tools: nullable({ type: 'array', maxItems: 1024 }),
    tool_choice: {},
  },
} as const;

export const embeddingBody = {
  type: 'object',
  required: ['model', 'input'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 512 },
    input: {
      anyOf: [
        { type: 'string', maxLength: LIMIT_TEXT },
        { type: 'array', minItems: 1, maxItems: 2048, items: { type: 'string', maxLength: LIMIT_TEXT } },
        tokenIds,
        { type: 'array', minItems: 1, maxItems: 2048, items: tokenIds },
      ],
    },
    encoding_format: nullable({ type: 'string', enum: ['float', 'base64'] }),
    dimensions: nullable({ type: 'integer', minimum: 1, maximum: 2 ** 24 }),
    user: { type: 'string', maxLength: 1024 },
  },
} as const;

export const tokenizeBody = {
  type: 'object',
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 512 },
    prompt: { type: 'string', maxLength: LIMIT_TEXT },
    messages: chatBody.properties.messages,
    add_special_tokens: { type: 'boolean' },
    add_generation_prompt: { type: 'boolean' },
  },
} as const;

export const detokenizeBody = {
  type: 'object',
  required: ['tokens'],
  properties: { model: { type: 'string', minLength: 1, maxLength: 512 }, tokens: { type: 'array', maxItems: 1 << 20, items: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } } },
} as const;
