// A small SVG writer for fixed-layout diagrams: boxes, groups and arrows, every text escaped and
// checked to fit its box, so a longer label fails the build instead of overlapping its neighbour.

/** Escapes text for an XML text node or attribute value. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/**
 * A generous estimate of a text's width in a sans-serif font: 0.55 em a character. Helvetica's and
 * Arial's glyphs average about 0.5 em in mixed lower-case text, so text that passes fits its box.
 */
export const textWidth = (text: string, size: number): number => text.length * size * 0.55;

/** Splits `text` into lines no wider than `width` at `size`, breaking after spaces. */
export function wrap(text: string, width: number, size: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const candidate = line === '' ? word : `${line} ${word}`;
    if (line !== '' && textWidth(candidate, size) > width) {
      lines.push(line);
      line = word;
    } else {
      line = candidate;
    }
  }
  if (line !== '') lines.push(line);
  for (const each of lines) {
    if (textWidth(each, size) > width) throw new Error(`diagram text '${each}' is wider than its box (${width}px)`);
  }
  return lines;
}

export interface BoxStyle {
  readonly stroke: string;
  readonly fill: string;
  readonly dashed?: boolean;
}

const FONT = 'Helvetica, Arial, sans-serif';
const TITLE_SIZE = 13;
const LINE_SIZE = 11;
const LINE_HEIGHT = 14;
const PADDING = 8;

/** Height a box needs for a title and these lines at `width`. */
export function boxHeight(width: number, lines: readonly string[]): number {
  const wrapped = lines.flatMap((line) => wrap(line, width - 2 * PADDING, LINE_SIZE));
  return PADDING + TITLE_SIZE + 4 + wrapped.length * LINE_HEIGHT + PADDING - 2;
}

/** An SVG document built element by element, in the order drawn. */
export class Svg {
  private readonly parts: string[] = [];

  constructor(
    private readonly width: number,
    private readonly height: number,
  ) {}

  /** Plain text; `anchor` as SVG's text-anchor. */
  text(x: number, y: number, text: string, options: { size?: number; bold?: boolean; fill?: string } = {}): void {
    const size = options.size ?? LINE_SIZE;
    if (x + textWidth(text, size) > this.width) throw new Error(`diagram text '${text}' runs off the page`);
    const weight = options.bold ? ' font-weight="bold"' : '';
    this.parts.push(
      `<text x="${x}" y="${y}" font-size="${size}"${weight} fill="${options.fill ?? '#1f2937'}">${escapeXml(text)}</text>`,
    );
  }

  rect(x: number, y: number, w: number, h: number, style: BoxStyle, radius = 6): void {
    const dash = style.dashed ? ' stroke-dasharray="6 4"' : '';
    this.parts.push(
      `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${radius}" fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.5"${dash}/>`,
    );
  }

  /** A group: a frame drawn behind what it holds, labelled at its top (or bottom) left. */
  group(x: number, y: number, w: number, h: number, label: string, style: BoxStyle, labelAtBottom = false): void {
    this.rect(x, y, w, h, style, 10);
    const lines = wrap(label, w - 2 * PADDING, 12);
    const top = labelAtBottom ? y + h - 6 - (lines.length - 1) * 14 : y + 16;
    for (const [index, line] of lines.entries()) {
      this.text(x + PADDING, top + index * 14, line, { size: 12, bold: true, fill: style.stroke });
    }
  }

  /**
   * A box with a bold title and wrapped lines. Throws when the text needs more height than `h`.
   * @returns the box's bottom edge
   */
  box(x: number, y: number, w: number, h: number, title: string, lines: readonly string[], style: BoxStyle): number {
    const wrapped = lines.flatMap((line) => wrap(line, w - 2 * PADDING, LINE_SIZE));
    const needed = boxHeight(w, lines);
    if (needed > h) throw new Error(`diagram box '${title}' needs ${needed}px of height, has ${h}px`);
    this.rect(x, y, w, h, style);
    wrap(title, w - 2 * PADDING, TITLE_SIZE);
    this.text(x + PADDING, y + PADDING + TITLE_SIZE - 2, title, { size: TITLE_SIZE, bold: true });
    for (const [index, line] of wrapped.entries()) {
      this.text(x + PADDING, y + PADDING + TITLE_SIZE + 4 + (index + 1) * LINE_HEIGHT - 3, line);
    }
    return y + h;
  }

  /** A polyline with an arrowhead at its end, and an optional numbered marker at `marker`. */
  arrow(
    points: ReadonlyArray<readonly [number, number]>,
    colour: string,
    marker?: { at: number; label: string },
  ): void {
    const d = points.map(([x, y], index) => `${index === 0 ? 'M' : 'L'}${x} ${y}`).join(' ');
    this.parts.push(
      `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2" marker-end="url(#head-${colour.slice(1)})"/>`,
    );
    this.heads.add(colour);
    if (marker) {
      const [x1, y1] = points[marker.at];
      const [x2, y2] = points[marker.at + 1];
      this.badge((x1 + x2) / 2, (y1 + y2) / 2, marker.label, colour);
    }
  }

  /** A numbered circle that ties an arrow to its line in the flow legend. */
  badge(x: number, y: number, label: string, colour: string): void {
    this.parts.push(`<circle cx="${x}" cy="${y}" r="9" fill="${colour}" stroke="#ffffff" stroke-width="1.5"/>`);
    this.parts.push(
      `<text x="${x}" y="${y + 4}" font-size="11" font-weight="bold" fill="#ffffff" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  }

  private readonly heads = new Set<string>();

  /** The document: arrowheads (one per colour, sorted) and the elements, in the order drawn. */
  render(title: string): string {
    const heads = [...this.heads]
      .sort()
      .map(
        (colour) =>
          `<marker id="head-${colour.slice(1)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="${colour}"/></marker>`,
      );
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.width}" height="${this.height}" viewBox="0 0 ${this.width} ${this.height}" font-family="${FONT}" role="img" aria-label="${escapeXml(title)}">`,
      `<title>${escapeXml(title)}</title>`,
      `<defs>${heads.join('')}</defs>`,
      `<rect x="0" y="0" width="${this.width}" height="${this.height}" fill="#ffffff"/>`,
      ...this.parts,
      '</svg>',
      '',
    ].join('\n');
  }
}
