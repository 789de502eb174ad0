// Entry point of the Kubernetes client's own bundle (see ../ims-function.ts): the whole library.
export * from '@kubernetes/client-node';
