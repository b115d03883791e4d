"""RTU-over-TCP Modbus server with two unit ids, for collect/modbus tests.

usage: pymodbus_rtu_over_tcp.py PORT

Unit 1: holding registers 0..3 = 1001, 1002, 0x47F1, 0x2000 (123456.0f ABCD),
        coils 0..7 = 1,0,1,0,0,0,0,0
Unit 2: holding registers 0..3 = 2001, 2002, 0x2000, 0x47F1 (123456.0f CDAB),
        input registers 0..1 = 7, 8
"""
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartTcpServer
from pymodbus.transaction import ModbusRtuFramer

logging.basicConfig(level=logging.WARNING)


def block(values):
    return ModbusSequentialDataBlock(0, values + [0] * (100 - len(values)))


def main():
    port = int(sys.argv[1])
    unit1 = ModbusSlaveContext(
        hr=block([1001, 1002, 0x47F1, 0x2000]),
        ir=block([]),
        co=block([1, 0, 1]),
        di=block([]),
        zero_mode=True,
    )
    unit2 = ModbusSlaveContext(
        hr=block([2001, 2002, 0x2000, 0x47F1]),
        ir=block([7, 8]),
        co=block([]),
        di=block([]),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves={1: unit1, 2: unit2}, single=False)
    StartTcpServer(
        context=context,
        address=("127.0.0.1", port),
        framer=ModbusRtuFramer,
        allow_reuse_address=True,
    )


if __name__ == "__main__":
    main()
