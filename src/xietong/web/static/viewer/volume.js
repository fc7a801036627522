// The data side of the viewer: loading a series' decoded frames into one typed array,
// window/level lookup tables, and the axial, coronal and sagittal planes (with MIP) as
// RGBA pixels. No DOM here, so the drawing code stays small.

const TYPES = {
  int16: [Int16Array, 32768, 65536],
  uint16: [Uint16Array, 0, 65536],
  int8: [Int8Array, 128, 256],
  uint8: [Uint8Array, 0, 256],
  rgb8: [Uint8Array, 0, 256],
};

export const PARALLEL_FETCHES = 6;

export class Volume {
  constructor(series) {
    this.series = series;
    this.rows = series.rows;
    this.cols = series.columns;
    this.depth = series.slices.length;
    this.rgb = series.sample_type === "rgb8";
    const [Type, offset, size] = TYPES[series.sample_type] || TYPES.uint16;
    this.Type = Type;
    this.offset = offset;
    this.lutSize = size;
    this.channels = this.rgb ? 3 : 1;
    this.frameLength = this.rows * this.cols * this.channels;
    // One buffer for the whole stack when the planes have one size (a volume), else one
    // array per slice.
    this.data = series.volume ? new Type(this.frameLength * this.depth) : null;
    this.slices = new Array(this.depth).fill(null);
    this.loaded = 0;
    const spacing = series.pixel_spacing || [1, 1];
    this.rowSpacing = spacing[0] || 1;
    this.colSpacing = spacing[1] || 1;
    this.sliceSpacing = series.slice_spacing || 1;
    this.hasSpacing = Boolean(series.pixel_spacing);
    // Slices are sorted along the plane normal; draw the head end at the top.
    const o = series.orientation;
    const normalZ = o ? o[0] * o[4] - o[1] * o[3] : 0;
    this.flip = normalZ > 0;
  }

  url(index) {
    const s = this.series.slices[index];
    return `/imaging/instances/${s.instance}/pixels` + (s.frame > 1 ? `?frame=${s.frame}` : "");
  }

  put(index, buffer) {
    let array = new this.Type(buffer);
    if (this.data && array.length === this.frameLength) {
      this.data.set(array, index * this.frameLength);
      array = this.data.subarray(index * this.frameLength, (index + 1) * this.frameLength);
    }
    if (!this.slices[index]) this.loaded += 1;
    this.slices[index] = { array, rows: this.rows, cols: this.cols };
  }

  // Fetch ``first`` alone (so it is drawn at once), then the rest outward from it,
  // ``PARALLEL_FETCHES`` at a time; ``onSlice`` runs after each.
  async load(first, onSlice, signal) {
    const fetchOne = async (index) => {
      const response = await fetch(this.url(index), { signal, credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const rows = Number(response.headers.get("X-Rows"));
      const cols = Number(response.headers.get("X-Columns"));
      const buffer = await response.arrayBuffer();
      if (rows !== this.rows || cols !== this.cols) {
        this.slices[index] = { array: new this.Type(buffer), rows, cols };
        this.loaded += 1;
      } else {
        this.put(index, buffer);
      }
      onSlice(index);
    };
    await fetchOne(first);
    const order = [];
    for (let d = 1; order.length < this.depth - 1; d += 1) {
      if (first + d < this.depth) order.push(first + d);
      if (first - d >= 0) order.push(first - d);
    }
    let next = 0;
    const worker = async () => {
      while (next < order.length && !signal.aborted) {
        const index = order[next];
        next += 1;
        await fetchOne(index);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_FETCHES }, worker));
  }

  // The lookup table from stored value (plus the type's offset) to grey, cached per key.
  lut(slope, intercept, center, width, invert) {
    const key = `${slope}|${intercept}|${center}|${width}|${invert}`;
    if (this.lutKey === key) return this.lutCache;
    const table = new Uint8ClampedArray(this.lutSize);
    const low = center - width / 2;
    const scale = 255 / Math.max(width, 1e-6);
    for (let i = 0; i < this.lutSize; i += 1) {
      const value = (i - this.offset) * slope + intercept;
      const grey = (value - low) * scale;
      table[i] = invert ? 255 - grey : grey;
    }
    this.lutKey = key;
    this.lutCache = table;
    return table;
  }

  // A plane as stored values: { values, width, height, pixel sizes in mm, slope, intercept }.
  // axial: slice ``index``; coronal: image row ``index``; sagittal: column ``index``.
  // ``slab`` (in planes) > 1 takes the maximum over that many neighbouring planes (MIP).
  plane(view, index, slab = 1) {
    const half = Math.floor((slab - 1) / 2);
    if (view === "axial") return this.axial(index, half);
    if (!this.data) return null;
    const { rows, cols, depth } = this;
    const width = view === "coronal" ? cols : rows;
    const values = new this.Type(width * depth);
    const from = Math.max(0, index - half);
    const to = Math.min((view === "coronal" ? rows : cols) - 1, index + half);
    for (let z = 0; z < depth; z += 1) {
      const out = (this.flip ? depth - 1 - z : z) * width;
      const base = z * rows * cols;
      for (let k = from; k <= to; k += 1) {
        for (let u = 0; u < width; u += 1) {
          const v = view === "coronal" ? this.data[base + k * cols + u] : this.data[base + u * cols + k];
          if (k === from || v > values[out + u]) values[out + u] = v;
        }
      }
    }
    const first = this.series.slices[0];
    return {
      values,
      width,
      height: depth,
      sx: view === "coronal" ? this.colSpacing : this.rowSpacing,
      sy: this.sliceSpacing,
      slope: first.slope,
      intercept: first.intercept,
    };
  }

  axial(index, half) {
    const slice = this.slices[index];
    if (!slice) return null;
    let values = slice.array;
    if (half > 0 && !this.rgb) {
      values = values.slice();
      for (let z = Math.max(0, index - half); z <= Math.min(this.depth - 1, index + half); z += 1) {
        const other = this.slices[z];
        if (!other || other.array.length !== values.length) continue;
        const a = other.array;
        for (let i = 0; i < values.length; i += 1) if (a[i] > values[i]) values[i] = a[i];
      }
    }
    const meta = this.series.slices[index];
    return {
      values,
      width: slice.cols,
      height: slice.rows,
      sx: this.colSpacing,
      sy: this.rowSpacing,
      slope: meta.slope,
      intercept: meta.intercept,
    };
  }

  // RGBA pixels of a plane through the window.
  toImageData(plane, center, width, invert) {
    const n = plane.width * plane.height;
    const image = new ImageData(plane.width, plane.height);
    const out = new Uint32Array(image.data.buffer);
    const values = plane.values;
    if (this.rgb) {
      for (let i = 0, j = 0; i < n; i += 1, j += 3) {
        const r = invert ? 255 - values[j] : values[j];
        const g = invert ? 255 - values[j + 1] : values[j + 1];
        const b = invert ? 255 - values[j + 2] : values[j + 2];
        out[i] = 0xff000000 | (b << 16) | (g << 8) | r;
      }
      return image;
    }
    const lut = this.lut(plane.slope, plane.intercept, center, width, invert);
    const offset = this.offset;
    for (let i = 0; i < n; i += 1) {
      const g = lut[values[i] + offset];
      out[i] = 0xff000000 | (g << 16) | (g << 8) | g; // little-endian RGBA
    }
    return image;
  }

  // A window that shows the slice when the file suggests none (1st to 99th percentile).
  autoWindow(index) {
    const slice = this.slices[index];
    const meta = this.series.slices[index];
    if (!slice || this.rgb) return [127, 256];
    const sample = [];
    const step = Math.max(1, Math.floor(slice.array.length / 20000));
    for (let i = 0; i < slice.array.length; i += step) sample.push(slice.array[i]);
    sample.sort((a, b) => a - b);
    const lo = sample[Math.floor(sample.length * 0.01)] * meta.slope + meta.intercept;
    const hi = sample[Math.floor(sample.length * 0.99)] * meta.slope + meta.intercept;
    return [(lo + hi) / 2, Math.max(hi - lo, 1)];
  }
}
