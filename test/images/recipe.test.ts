import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe, parseRecipe } from '../../src/images/recipe.js';

const IMAGES = path.resolve(__dirname, '../../images');

describe('recipes', () => {
  it("the repository's bee and buildos recipes are valid", async () => {
    const bee = await loadRecipe(IMAGES, 'bee');
    expect(bee.recipe.root.base).toBe('packages');
    expect(bee.recipe.kernel.flavour).toBe('cloud-amd64');
    const buildos = await loadRecipe(IMAGES, 'buildos');
    expect(buildos.recipe.root).toMatchObject({ base: 'debootstrap', suite: 'bookworm', variant: 'minbase' });
  });

  it('errors name the file, line, key and what was found', () => {
    const text = readFileSync(path.join(IMAGES, 'bee', 'recipe.yaml'), 'utf8').replace('- /usr/sbin/dropbear', '- usr/sbin/dropbear');
    expect(() => parseRecipe('images/bee/recipe.yaml', text)).toThrow(/images\/bee\/recipe\.yaml:\d+:\d+: root\.programs\[1\]: expected an absolute path like \/usr\/sbin\/dropbear, got "usr\/sbin\/dropbear"/);
    expect(() => parseRecipe('r.yaml', 'description: x\nkernel: {flavour: cloud-amd64}\nroot: {base: iso}\n')).toThrow(/r\.yaml:3:\d+: root\.base: /);
    expect(() => parseRecipe('r.yaml', 'description: x\nkernel: {flavour: cloud-amd64}\nroot: {base: packages, packages: [], programs: []}\nhooks: [../x.sh]\n')).toThrow(/hooks\[0\]: expected a path/);
  });
});
