//! §1 The Lichat wire format: values, the incremental reader and the
//! printer. Knows nothing of users, channels or sockets.

mod printer;
mod reader;
mod symbol;
mod value;

pub use printer::{
    PrintError, print_integer, print_object, print_string, print_symbol, print_u64, print_update,
    print_value, update_to_vec,
};
pub use reader::{
    MAX_DEPTH, ReadError, Reader, Status, find_nul, read_object, read_update, read_value,
};
pub use symbol::{Known, OtherSymbol, Package, Symbol, lower};
pub use value::{Integer, Object, ObjectError, Value};
