"""OPC-UA pump-room PLC simulator (an asyncua server)."""
