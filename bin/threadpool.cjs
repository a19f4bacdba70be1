// Preloaded with `node -r` (npm start, the bench): libuv reads UV_THREADPOOL_SIZE once, when its
// pool first starts, which in an ES module entry is before any of our code runs. Password hashing
// runs on that pool; one thread per core lets logins reach the hash rate without a queue of
// threads fighting the event loop for the cores.
const os = require('node:os');

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, os.availableParallelism()));
