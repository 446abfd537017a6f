// The architecture descriptions (lib/arch/) against the engine's own architectures (engine/arch_*.cpp), which were
// written apart from them: the same set of architectures, and for each, with every optional tensor switched each
// way, the engine takes exactly the description's tensors: loadTensor refuses a name or shape it does not expect,
// finalize names any tensor it expected and did not get.
import { ARCHITECTURES, tensorList, type ModelFileConfig } from '../../lib/arch';
import { binding, type AddonModel } from '../../lib/binding';
import { archShapeVariants, expectCode } from '../util/engine-helpers';

const random = (shape: number[]) => ({ random: { seed: 1, std: 0.1 }, shape });

async function load(cfg: ModelFileConfig, skip?: string): Promise<AddonModel> {
  const m = new (binding().AddonModel)({ ...cfg, dtype: 'float32', device: 'cpu' });
  for (const t of tensorList(cfg)) if (t.name !== skip) await m.loadTensor(t.name, random(t.shape));
  return m;
}

test('the engine registers the architectures lib/arch describes, no more, no fewer', () => {
  expect([...binding().architectures()].sort()).toEqual(ARCHITECTURES.map((a) => a.arch).sort());
});

describe.each(archShapeVariants().map((c) => [`${c.arch} (tied ${c.tiedEmbeddings}, qkvBias ${c.qkvBias ?? '-'})`, c] as const))('%s', (_label, c) => {
  test('the engine accepts every described tensor with its shape and needs no other', async () => {
    const m = await load(c);
    try {
      await m.finalize();
    } finally {
      m.dispose();
    }
  });

  test('and the check can fail: a tensor left out, a shape off by one', async () => {
    const [first, last] = [tensorList(c)[0], tensorList(c).at(-1)!];
    const m = await load(c, last.name);
    try {
      await expectCode(m.finalize(), 'ERR_MODEL_FORMAT', new RegExp(`missing tensors: ${last.name.replace(/\./g, '\\.')}$`));
      await expectCode(m.loadTensor(first.name, random([first.shape[0] + 1, ...first.shape.slice(1)])), 'ERR_MODEL_FORMAT', /expected shape/);
    } finally {
      m.dispose();
    }
  });
});
