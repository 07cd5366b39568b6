// Preloaded with `node -r` into servers that have no host option: every
// listen() on a TCP port binds 127.0.0.1, so tests never open a port to the network.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "object" && args[0] !== null && !Array.isArray(args[0])) {
    if (args[0].port !== undefined && args[0].path === undefined) {
      args[0] = { ...args[0], host: "127.0.0.1" };
    }
  } else if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const rest = args.slice(1).filter((a) => typeof a !== "string");
    args = [args[0], "127.0.0.1", ...rest];
  }
  return listen.apply(this, args);
};
