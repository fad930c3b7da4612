/**
 * The few protocol-buffer encodings a TensorFlow GraphDef / SavedModel needs
 * (varints, fixed32 floats, length-delimited fields), written by hand so the native
 * graph path has no protobuf dependency. Field numbers live with the messages in
 * saved-model.ts.
 */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }

  private varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      out.push(byte);
    } while (x !== 0n);
    return this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  /** int64 / int32 / enum / bool field (wire type 0). Negative numbers take ten bytes, as protobuf's int64 does. */
  int(field: number, v: number | bigint | boolean): this {
    return this.tag(field, 0).varint(typeof v === 'boolean' ? (v ? 1 : 0) : v);
  }

  /** float field (wire type 5). */
  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.tag(field, 5).push(b);
  }

  bytes(field: number, b: Uint8Array): this {
    return this.tag(field, 2).varint(b.length).push(b);
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  /** Packed repeated varints (int64 lists, enum lists, bool lists). */
  packedInts(field: number, vs: (number | boolean)[]): this {
    const inner = new ProtoWriter();
    for (const v of vs) inner.varint(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated floats. */
  packedFloats(field: number, vs: number[]): this {
    const b = new Uint8Array(4 * vs.length);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(4 * i, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}
