/** PEM files are bundled as text (esbuild's `text` loader; jest's test/helpers/text-transform.js). */
declare module '*.pem' {
  const text: string;
  export default text;
}
