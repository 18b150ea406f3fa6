//! Typed indices into the compiled configuration's tables (`Gateway::apis`, `Gateway::stages`, the app
//! directory, `Gateway::plugins`), so an API's index is never taken for an app's. Each wraps the
//! `u32` the tables are indexed by.

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            /// The position in its table.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id!(
    /// An API: its position in `Gateway::apis`.
    ApiId
);
id!(
    /// An app: its position in the app directory.
    AppId
);
id!(
    /// A stage: its position in `Gateway::stages`.
    StageId
);
id!(
    /// A plugin: its position in `Gateway::plugins`.
    PluginId
);
