"""Modbus RTU server on a pseudo-terminal, for collect/modbus tests.

usage: pymodbus_rtu_serial.py

Creates two pty pairs and relays bytes between their master ends (a null
modem, as socat would), serves RTU with pymodbus on the first slave end and
prints the second slave end's path ("PTY /dev/pts/N") for the client.

Unit 3: holding registers 0..2 = 31, 32, 33; discrete input 0 = 1.
"""
import asyncio
import os
import select
import sys
import threading
import termios
import tty

import serial.serialposix

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncSerialServer
from pymodbus.transaction import ModbusRtuFramer


# A pty rejects some termios settings pyserial makes (errno 22); the line
# settings do not matter on a pty, so ignore that failure.
_reconfigure = serial.serialposix.Serial._reconfigure_port


def _tolerant_reconfigure(self, *args, **kwargs):
    try:
        _reconfigure(self, *args, **kwargs)
    except termios.error:
        pass


serial.serialposix.Serial._reconfigure_port = _tolerant_reconfigure


def relay(a, b):
    while True:
        r, _, _ = select.select([a, b], [], [])
        for src in r:
            dst = b if src == a else a
            try:
                data = os.read(src, 1024)
            except OSError:
                return
            os.write(dst, data)


def main():
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (m1, s1, m2, s2):
        tty.setraw(fd)
    server_path, client_path = os.ttyname(s1), os.ttyname(s2)
    threading.Thread(target=relay, args=(m1, m2), daemon=True).start()
    block = lambda v: ModbusSequentialDataBlock(0, v + [0] * (100 - len(v)))
    unit = ModbusSlaveContext(hr=block([31, 32, 33]), ir=block([]), co=block([]), di=block([1]), zero_mode=True)
    context = ModbusServerContext(slaves={3: unit}, single=False)
    print("PTY " + client_path, flush=True)
    asyncio.run(StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=server_path, baudrate=19200, parity="E", stopbits=1, bytesize=8, timeout=0.1))


if __name__ == "__main__":
    main()
