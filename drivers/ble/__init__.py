"""BLE sensor source (bleak): passive scanning for BTHome v2 and Xiaomi LYWSD03MMC custom-firmware advertisements."""
