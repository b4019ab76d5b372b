"""OPC-UA source (asyncua): PLCs in pump rooms and heat-exchange stations."""
