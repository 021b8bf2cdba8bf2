"""The HTTP servers (interlock's own HTTP/1.1 server, or Granian) and the RSGI-shaped objects they hand the app."""
