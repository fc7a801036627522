"""Live delivery over the WebSocket at /ws (docs/live.md): the endpoint, the connection
handed to frame handlers, the conversation frames (chat) and the video-session frames
(live)."""
