// Jest transform for files that esbuild bundles with its `text` loader (the RDS CA bundle): the
// module's default export is the file's text, as in the bundled Lambda.
module.exports = {
  process(sourceText) {
    return { code: `module.exports = { __esModule: true, default: ${JSON.stringify(sourceText)} };` };
  },
};
