//! Extension state that lives only while the server runs, on a channel
//! (`shirakumo.mess` §8 the pause's last-update list) or server-wide
//! (§19 who blocks whom among the users online): one value per
//! extension, found by its type, so that an extension keeps its own
//! structure in its own file.

use std::any::Any;
use std::fmt;

/// The volatile state extensions keep on one channel.
#[derive(Default)]
pub struct ExtState(Vec<Box<dyn Any>>);

impl ExtState {
    /// The value of type `T`, if an extension put one here.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.iter().find_map(|v| v.downcast_ref::<T>())
    }

    /// The value of type `T`, made with its default first if missing.
    pub fn get_or_default<T: Default + 'static>(&mut self) -> &mut T {
        let i = match self.0.iter().position(|v| v.is::<T>()) {
            Some(i) => i,
            None => {
                self.0.push(Box::new(T::default()));
                self.0.len() - 1
            }
        };
        self.0[i]
            .downcast_mut::<T>()
            .expect("the slot holds a T: it was found or made so")
    }

    /// The value of type `T`, mutably, if an extension put one here.
    pub fn get_mut_opt<T: 'static>(&mut self) -> Option<&mut T> {
        self.0.iter_mut().find_map(|v| v.downcast_mut::<T>())
    }

    /// Drops the value of type `T`.
    pub fn remove<T: 'static>(&mut self) {
        self.0.retain(|v| !v.is::<T>());
    }
}

impl fmt::Debug for ExtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtState({} values)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::ExtState;

    #[test]
    fn values_are_kept_per_type() {
        let mut s = ExtState::default();
        assert_eq!(*s.get_or_default::<u32>(), 0);
        *s.get_or_default::<u32>() += 5;
        s.get_or_default::<String>().push('x');
        assert_eq!(*s.get_or_default::<u32>(), 5);
        assert_eq!(s.get_or_default::<String>(), "x");
        s.remove::<u32>();
        assert_eq!(*s.get_or_default::<u32>(), 0);
        assert_eq!(s.get_or_default::<String>(), "x");
    }
}
