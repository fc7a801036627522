// The mesh: one RTCPeerConnection per other peer. The newcomer offers to everyone already
// in the session; the others answer. Candidates trickle through live.signal; those that
// arrive before the remote description wait in a queue.
//
// Bandwidth: every participant sends its video once per other participant, so what it
// sends in all (upload_kbps, from the server's settings) is split across the connections:
// a six-person call on a home uplink degrades each picture instead of stalling them all.
const MAX_KBPS = 1000; // 640×360 needs no more
const MIN_KBPS = 150; // below this the picture is not worth sending

export class Mesh {
  constructor({ sessionId, send, iceServers, onTrack, onGone, uploadKbps, onBudget }) {
    this.sessionId = sessionId;
    this.send = send;
    this.iceServers = iceServers;
    this.onTrack = onTrack;
    this.onGone = onGone;
    this.uploadKbps = uploadKbps || 0;
    this.onBudget = onBudget;
    this.peers = new Map(); // peer id -> {pc, pending: [], stream}
    this.stream = null;
    this.budget = Promise.resolve(); // one split at a time: setParameters is transactional
  }

  // The per-connection cap for the current number of connections, on every video sender
  // that has been negotiated; reports the cap the browser took.
  _split() {
    this.budget = this.budget.then(() => this._applySplit()).catch((err) => console.warn(err));
    return this.budget;
  }

  async _applySplit() {
    const count = this.peers.size;
    if (!count || !this.uploadKbps) return;
    const kbps = Math.max(MIN_KBPS, Math.min(MAX_KBPS, Math.floor(this.uploadKbps / count)));
    let applied = null;
    for (const { pc } of this.peers.values()) {
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
      const params = sender?.getParameters();
      if (!params?.encodings?.length) continue; // not negotiated yet: split again later
      params.encodings[0].maxBitrate = kbps * 1000;
      await sender.setParameters(params);
      applied = sender.getParameters().encodings[0].maxBitrate / 1000;
    }
    if (applied !== null) this.onBudget?.(applied);
  }

  setStream(stream) {
    this.stream = stream;
  }

  _signal(to, data) {
    this.send({ type: "live.signal", session: this.sessionId, to, data });
  }

  _connection(peer) {
    let entry = this.peers.get(peer);
    if (entry) return entry;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    entry = { pc, pending: [], stream: new MediaStream() };
    this.peers.set(peer, entry);
    if (this.stream) {
      for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    pc.onicecandidate = (event) => {
      this._signal(peer, { candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    pc.ontrack = (event) => {
      const stream = event.streams[0] || entry.stream;
      if (!event.streams[0]) entry.stream.addTrack(event.track);
      this.onTrack(peer, stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.onGone(peer, "failed");
    };
    return entry;
  }

  async call(peer) {
    const { pc } = this._connection(peer);
    await pc.setLocalDescription(await pc.createOffer());
    this._signal(peer, { sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
    this._split();
  }

  async receive(from, data) {
    if (data.sdp) {
      const entry = this._connection(from);
      await entry.pc.setRemoteDescription(data.sdp);
      for (const candidate of entry.pending.splice(0)) await entry.pc.addIceCandidate(candidate);
      if (data.sdp.type === "offer") {
        await entry.pc.setLocalDescription(await entry.pc.createAnswer());
        const local = entry.pc.localDescription;
        this._signal(from, { sdp: { type: local.type, sdp: local.sdp } });
      }
      this._split();
    } else if ("candidate" in data) {
      const entry = this.peers.get(from);
      if (!entry || !data.candidate) return;
      if (entry.pc.remoteDescription) await entry.pc.addIceCandidate(data.candidate);
      else entry.pending.push(data.candidate);
    }
  }

  // Screen share and back: the video sender of every connection takes the new track.
  async replaceVideo(track) {
    for (const { pc } of this.peers.values()) {
      const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
      if (sender) await sender.replaceTrack(track);
    }
  }

  drop(peer) {
    const entry = this.peers.get(peer);
    if (!entry) return;
    entry.pc.close();
    this.peers.delete(peer);
    this._split(); // fewer connections: a larger share each
  }

  close() {
    for (const peer of [...this.peers.keys()]) this.drop(peer);
  }
}
