// A janus session: the media goes through the SFU, the pseudo-peer "sfu" of our signaling
// (docs/live.md, "Mesh and Janus"). One RTCPeerConnection publishes the camera (we offer,
// Janus answers); one more per other publisher receives its feed (Janus offers with
// `feed`, the publisher's peer id; we answer). Same interface as Mesh, so the page's
// mute, camera off, screen share and speaker code do not care which one they talk to.
const SFU = "sfu";

export class Sfu {
  constructor({ sessionId, send, iceServers, onTrack, onGone }) {
    this.sessionId = sessionId;
    this.send = send;
    this.iceServers = iceServers;
    this.onTrack = onTrack;
    this.onGone = onGone;
    this.stream = null;
    this.publisher = null; // {pc, pending}
    this.watching = false; // no camera or microphone: receive only
    this.feeds = new Map(); // publisher's peer id -> {pc, pending, stream}
  }

  setStream(stream) {
    this.stream = stream;
  }

  _signal(data, feed) {
    this.send({ type: "live.signal", session: this.sessionId, to: SFU, ...(feed ? { feed } : {}), data });
  }

  _connection(feed) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const entry = { pc, pending: [], stream: new MediaStream() };
    pc.onicecandidate = (event) => {
      this._signal({ candidate: event.candidate ? event.candidate.toJSON() : null }, feed);
    };
    if (feed) {
      pc.ontrack = (event) => {
        const stream = event.streams[0] || entry.stream;
        if (!event.streams[0]) entry.stream.addTrack(event.track);
        this.onTrack(feed, stream);
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") this.onGone(feed, "failed");
      };
    }
    return entry;
  }

  // The mesh offers to each peer already present; here we publish once, whoever is there.
  async publish() {
    if (this.publisher || this.watching) return;
    if (!this.stream || !this.stream.getTracks().length) {
      // No camera or microphone (none, or refused): watch and listen without publishing.
      this.watching = true;
      this._signal({ watch: true });
      return;
    }
    this.publisher = this._connection(null);
    const { pc } = this.publisher;
    if (this.stream) {
      for (const track of this.stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    this._signal({ sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
  }

  async call() {
    await this.publish();
  }

  async receive(from, data, feed) {
    if (from !== SFU) return; // nothing comes peer to peer in a janus session
    const entry = feed ? this._feed(feed) : this.publisher;
    if (!entry) return;
    if (data.sdp) {
      await entry.pc.setRemoteDescription(data.sdp);
      for (const candidate of entry.pending.splice(0)) await entry.pc.addIceCandidate(candidate);
      if (data.sdp.type === "offer") {
        await entry.pc.setLocalDescription(await entry.pc.createAnswer());
        const local = entry.pc.localDescription;
        this._signal({ sdp: { type: local.type, sdp: local.sdp } }, feed);
      }
    } else if (data.candidate) {
      if (entry.pc.remoteDescription) await entry.pc.addIceCandidate(data.candidate);
      else entry.pending.push(data.candidate);
    }
  }

  _feed(feed) {
    let entry = this.feeds.get(feed);
    if (!entry) {
      entry = this._connection(feed);
      this.feeds.set(feed, entry);
    }
    return entry;
  }

  // Screen share and back: only the publishing connection sends video.
  async replaceVideo(track) {
    const sender = this.publisher?.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    if (sender) await sender.replaceTrack(track);
  }

  drop(peer) {
    const entry = this.feeds.get(peer);
    if (!entry) return;
    entry.pc.close();
    this.feeds.delete(peer);
  }

  close() {
    for (const peer of [...this.feeds.keys()]) this.drop(peer);
    this.publisher?.pc.close();
    this.publisher = null;
  }
}
