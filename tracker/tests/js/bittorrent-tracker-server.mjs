// Stock bittorrent-tracker (npm) as a plain-ws WebTorrent tracker on 127.0.0.1,
// for `peerhost bench tracker` to compare against. Usage: node this.mjs [PORT]
// Prints "bittorrent-tracker listening on ws://127.0.0.1:PORT" once bound.
// The server import avoids the client, which needs a native module that an
// --ignore-scripts install does not build.
import Server from 'bittorrent-tracker/server'

const port = Number(process.argv[2] || 0)
const server = new Server({ udp: false, http: false, ws: true, stats: false })
server.on('error', (err) => { console.error(err); process.exit(1) })
server.on('warning', () => {})
server.on('listening', () => {
  console.log(`bittorrent-tracker listening on ws://127.0.0.1:${server.http.address().port}`)
})
server.listen(port, '127.0.0.1')
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)))
