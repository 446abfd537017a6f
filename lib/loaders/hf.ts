// Hugging Face model directories: config.json (validated and mapped to the engine's config), the safetensors
// weights (model.safetensors or a sharded index) with their names mapped to the engine's GGUF-style names
// (binding.ts), and the generation stop ids of generation_config.json. The tokenizer is lib/tokenizers/hf.ts.
//
// Which model types load, how each one's config.json fields map, and which tensors it has under which names (GPT-2's
// Conv1D matrices loaded transposed) is in its description (lib/arch/). Tensors the model does not use are ignored.
import { checkConfigLimits } from '../limits';
import * as fs from 'fs';
import * as path from 'path';
import type { AddonFileSource } from '../binding';
import { HF_MODEL_TYPES, archForHfModelType, hfModelTypeOfClass, tensorList, type HfModelType } from '../arch';
import type { HfConfigReader, ModelFileConfig } from '../arch/types';
import { ModelFormatError, UnsupportedError } from '../errors';
import { SafetensorsTensor, readSafetensorsModel, safetensorsSource } from '../formats/safetensors';
import { READ_LIMITS, readRegularFile } from './files';

export type { HfModelType };

export interface HfConfig {
  modelType: HfModelType;
  config: ModelFileConfig;
  /** torch_dtype as written (informational: weights are converted to the requested dtype on load). */
  torchDtype: string | null;
  /** bos/eos ids of config.json (eos: int or list), when present. */
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export interface HfModel extends HfConfig {
  dir: string;
  tensors: Array<{ name: string; source: AddonFileSource }>;
  /** Stop ids: generation_config.json's eos_token_id, then config.json's, without repeats. */
  stopIds: number[];
}

type Json = Record<string, unknown>;
const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_MIN = 1.401298464324817e-45;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string, what: string): never {
  throw new ModelFormatError(`Invalid Hugging Face config ${file}: ${what}`);
}

/**
 * Reads a JSON object file of at most `maxBytes` (READ_LIMITS: config files by default); absent → null when
 * optional. A path that exists but is not a regular file (a directory, a FIFO) is an error, optional or not.
 */
export async function readJsonObject(file: string, optional: boolean,
  { maxBytes = READ_LIMITS.configJson, signal }: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<Json | null> {
  if (optional && !fs.existsSync(file)) return null;
  const text = (await readRegularFile(file, 'file', maxBytes, signal)).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${file} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObject(v)) throw new ModelFormatError(`${file} is not a JSON object`);
  return v;
}

/** Token ids of a field that is an int, a list of ints, or absent/null. */
export function tokenIds(file: string, json: Json, field: string): number[] {
  const v = json[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) fail(file, `${field} is ${JSON.stringify(v)}, expected a token id or a list of them`);
  return list as number[];
}

function modelTypeOf(file: string, json: Json): HfModelType {
  const mt = json.model_type;
  if (mt !== undefined && typeof mt !== 'string') fail(file, `model_type is ${JSON.stringify(mt)}, expected a string`);
  const archs = json.architectures;
  if (archs !== undefined && !(Array.isArray(archs) && archs.every((a) => typeof a === 'string'))) {
    fail(file, `architectures is ${JSON.stringify(archs)}, expected a list of class names`);
  }
  if (typeof mt === 'string') {
    if (archForHfModelType(mt)) return mt as HfModelType;
    throw new UnsupportedError(`Unsupported model_type "${mt}" in ${file} (supported: ${HF_MODEL_TYPES.join(', ')})`);
  }
  const names = (archs ?? []) as string[];
  for (const a of names) {
    const known = hfModelTypeOfClass(a);
    if (known) return known;
  }
  if (names.length) throw new UnsupportedError(`Unsupported architecture ${names.join(', ')} in ${file} (supported: ${HF_MODEL_TYPES.join(', ')})`);
  fail(file, 'neither model_type nor architectures is given');
}

/**
 * Validates config.json and maps it to the engine config. Unknown architectures and features the engine lacks
 * (rope scaling types, attention biases on llama, other activations) → UnsupportedError; missing or malformed
 * fields → ModelFormatError naming the field.
 */
export function parseHfConfig(file: string, json: Json): HfConfig {
  const modelType = modelTypeOf(file, json);
  const torchDtype = typeof json.torch_dtype === 'string' ? json.torch_dtype : typeof json.dtype === 'string' ? json.dtype : null;
  const bosIds = tokenIds(file, json, 'bos_token_id');
  const ids = { torchDtype, bosTokenId: bosIds.length ? bosIds[0] : null, eosTokenIds: tokenIds(file, json, 'eos_token_id') };
  const config = archForHfModelType(modelType)!.hf.config(configReader(file, json, modelType));
  checkConfigLimits(file, config);
  return { modelType, config, ...ids };
}

/** config.json as the descriptions read it, with this loader's validation and errors. */
function configReader(file: string, json: Json, modelType: string): HfConfigReader {
  return {
    modelType,
    file,
    int(field, dflt, min = 1) {
      const v = json[field];
      if (v === undefined || v === null) {
        if (dflt !== undefined) return dflt;
        fail(file, `missing field ${field}`);
      }
      if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > 2 ** 31 - 1) fail(file, `${field} is ${JSON.stringify(v)}, expected an integer >= ${min}`);
      return v as number;
    },
    num(field, dflt) {
      const v = json[field];
      if (v === undefined || v === null) return dflt;
      // The engine holds these as float32: 1e308 would become Infinity there, 1e-300 zero.
      if (typeof v !== 'number' || !(Math.fround(v) > 0) || !Number.isFinite(Math.fround(v))) {
        fail(file, `${field} is ${JSON.stringify(v)}, expected a positive number a float32 holds (${FLOAT32_MIN} to ${FLOAT32_MAX})`);
      }
      return v;
    },
    bool(field, dflt) {
      const v = json[field];
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'boolean') fail(file, `${field} is ${JSON.stringify(v)}, expected true or false`);
      return v;
    },
    oneOf(field, allowed, dflt) {
      const v = json[field] ?? dflt;
      if (typeof v !== 'string') fail(file, `${field} is ${JSON.stringify(v)}, expected a string`);
      if (!allowed.includes(v)) throw new UnsupportedError(`Unsupported ${field} "${v}" for ${modelType} in ${file} (supported: ${allowed.join(', ')})`);
    },
    raw: (field) => json[field],
    invalid: (what) => fail(file, what),
    unsupported: (message) => {
      throw new UnsupportedError(message);
    },
  };
}

/** Maps the file's tensors to the engine's; missing ones → ModelFormatError listing them; extras are ignored. */
export function mapHfTensors(dir: string, config: ModelFileConfig, tensors: SafetensorsTensor[]): HfModel['tensors'] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out: HfModel['tensors'] = [];
  const missing: string[] = [];
  for (const w of tensorList(config)) {
    const t = w.hf.map((n) => byName.get(n)).find((x) => x !== undefined);
    if (!t) {
      missing.push(w.hf[0]);
      continue;
    }
    const source = safetensorsSource(t);
    if (w.hfConv1D) {
      if (t.shape.length !== 2) throw new ModelFormatError(`Invalid Hugging Face model ${dir}: tensor "${t.name}" has shape [${t.shape.join(', ')}], expected a 2-D Conv1D weight`);
      source.transpose = true;
    }
    out.push({ name: w.name, source });
  }
  if (missing.length) {
    const shown = missing.length > 20 ? `${missing.slice(0, 20).join(', ')} and ${missing.length - 20} more` : missing.join(', ');
    throw new ModelFormatError(`Invalid Hugging Face model ${dir}: missing tensors ${shown}`);
  }
  return out;
}

/** Reads a model directory: config.json, generation_config.json (optional), the safetensors headers. */
export async function readHfModel(dir: string, signal?: AbortSignal): Promise<HfModel> {
  const configFile = path.join(dir, 'config.json');
  const json = (await readJsonObject(configFile, false, { signal }))!;
  const parsed = parseHfConfig(configFile, json);
  const genFile = path.join(dir, 'generation_config.json');
  const gen = await readJsonObject(genFile, true, { signal });
  const stopIds = [...new Set([...(gen ? tokenIds(genFile, gen, 'eos_token_id') : []), ...parsed.eosTokenIds])];
  const st = await readSafetensorsModel(dir, signal);
  const tensors = mapHfTensors(dir, parsed.config, st.tensors);
  return { ...parsed, dir, tensors, stopIds };
}
