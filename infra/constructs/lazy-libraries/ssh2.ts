// Entry point of ssh2's own bundle (see ../ims-function.ts). ssh2 is CommonJS: its exports are
// the default export, as `import('ssh2')` sees them from ESM.
import ssh2 from 'ssh2';
export default ssh2;
