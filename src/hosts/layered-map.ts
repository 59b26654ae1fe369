/**
 * A map as a base and a small layer of changes over it, so that a new
 * version after a few changes costs those changes, not a copy of 100,000
 * entries; the previous version stays as it was (a HostSet is immutable:
 * a reader holding the old one keeps seeing it). Once the layer grows past
 * `flattenAt` entries, the next version starts from a flat copy.
 */
export class LayeredMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    /** Changed keys: the new value, or undefined for removed. */
    private readonly layer: Map<K, V | undefined>,
  ) {}

  static of<K, V>(flat: ReadonlyMap<K, V> = new Map()): LayeredMap<K, V> {
    return new LayeredMap(flat, new Map());
  }

  get(k: K): V | undefined {
    return this.layer.has(k) ? this.layer.get(k) : this.base.get(k);
  }

  has(k: K): boolean {
    return this.get(k) !== undefined;
  }

  set(k: K, v: V): void {
    this.layer.set(k, v);
  }

  delete(k: K): void {
    if (this.base.has(k)) this.layer.set(k, undefined);
    else this.layer.delete(k);
  }

  /** The next version: changes to it leave this one as it is. */
  derive(flattenAt = 4096): LayeredMap<K, V> {
    if (this.layer.size < flattenAt) return new LayeredMap(this.base, new Map(this.layer));
    const flat = new Map(this.base);
    for (const [k, v] of this.layer) {
      if (v === undefined) flat.delete(k);
      else flat.set(k, v);
    }
    return new LayeredMap(flat, new Map());
  }
}
