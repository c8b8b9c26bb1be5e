//! `#[spindle::remote]`: a trait whose implementations a manager server can
//! hold, and the proxy that calls them from other processes.

use proc_macro2::TokenStream;

use crate::{fnv1a, squeeze};
use quote::{format_ident, quote};
use syn::{
    FnArg, ItemTrait, LitStr, Pat, ReceiverKind, ReturnType, TraitItem, Type, spanned::Spanned,
};

/// The macro's arguments: `name = "..."`, the typeid's name.
pub(crate) fn parse_name(attr: TokenStream) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    if attr.is_empty() {
        return Ok(None);
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        } else {
            Err(meta.error("#[spindle::remote] takes only `name = \"...\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(name)
}

struct Method {
    ident: syn::Ident,
    mutable: bool,
    args: Vec<Type>,
    output: TokenStream,
    docs: Vec<syn::Attribute>,
}

const RESERVED: [&str; 2] = ["typeid", "remote_handle"];

fn methods(item: &ItemTrait) -> syn::Result<Vec<Method>> {
    let mut out = Vec::new();
    for it in &item.items {
        let TraitItem::Fn(f) = it else {
            return Err(syn::Error::new(
                it.span(),
                "a #[spindle::remote] trait holds only methods",
            ));
        };
        let sig = &f.sig;
        if sig.asyncness.is_some() {
            return Err(syn::Error::new(
                sig.span(),
                "a remote method cannot be async: the proxy gives each method an `_async` face",
            ));
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "a remote method cannot be generic: its types must be known to both ends",
            ));
        }
        if sig.variadic.is_some() {
            return Err(syn::Error::new(
                sig.span(),
                "a remote method cannot be variadic",
            ));
        }
        let name = sig.ident.to_string();
        if RESERVED.contains(&name.as_str()) {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("`{name}` is a name the generated proxy uses itself: rename the method"),
            ));
        }
        let mut inputs = sig.inputs.iter();
        let mutable = match inputs.next() {
            Some(FnArg::Receiver(syn::Receiver {
                kind: ReceiverKind::Reference(_, _, m),
                ..
            })) => m.is_some(),
            _ => {
                return Err(syn::Error::new(
                    sig.span(),
                    "a remote method takes `&self` or `&mut self`: it runs on the server's object",
                ));
            }
        };
        let mut args = Vec::new();
        for input in inputs {
            let FnArg::Typed(pt) = input else {
                unreachable!("only the first input can be a receiver")
            };
            if !matches!(*pt.pat, Pat::Ident(_) | Pat::Wild(_)) {
                return Err(syn::Error::new(
                    pt.pat.span(),
                    "a remote method's parameters are plain names",
                ));
            }
            if let Type::Reference(_) | Type::ImplTrait(_) = *pt.ty {
                return Err(syn::Error::new(
                    pt.ty.span(),
                    "a remote method's arguments travel by value: use an owned type (String for &str, Vec<T> for &[T])",
                ));
            }
            args.push((*pt.ty).clone());
        }
        let output = match &sig.output {
            ReturnType::Default => quote!(()),
            ReturnType::Type(_, ty) => {
                if let Type::Reference(_) | Type::ImplTrait(_) = **ty {
                    return Err(syn::Error::new(
                        ty.span(),
                        "a remote method returns an owned value: it travels back to the client",
                    ));
                }
                quote!(#ty)
            }
        };
        let docs = f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        out.push(Method {
            ident: sig.ident.clone(),
            mutable,
            args,
            output,
            docs,
        });
    }
    for m in &out {
        let async_name = format!("{}_async", m.ident);
        if out.iter().any(|o| o.ident == async_name) {
            return Err(syn::Error::new(
                m.ident.span(),
                format!("the proxy's `{async_name}` would clash with the method of that name"),
            ));
        }
    }
    Ok(out)
}

pub(crate) fn expand(name: Option<LitStr>, item: &ItemTrait) -> syn::Result<TokenStream> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            item.generics.span(),
            "a #[spindle::remote] trait cannot be generic",
        ));
    }
    let methods = methods(item)?;
    let vis = &item.vis;
    let tr = &item.ident;
    let proxy = format_ident!("{}Proxy", tr);
    let typeid = format!(
        "remote:{}",
        name.map(|n| n.value()).unwrap_or_else(|| tr.to_string())
    );
    // The signature: each method as `name(&self,T1,T2)->R;`, whitespace
    // removed, hashed with FNV-1a.
    let mut text = String::new();
    for m in &methods {
        let recv = if m.mutable { "&mut self" } else { "&self" };
        text.push_str(&m.ident.to_string());
        text.push('(');
        text.push_str(recv);
        for a in &m.args {
            text.push(',');
            text.push_str(&squeeze(&quote!(#a)));
        }
        text.push_str(")->");
        text.push_str(&squeeze(&m.output));
        text.push(';');
    }
    let signature = fnv1a(&text);

    let mut client = Vec::new();
    let mut arms = Vec::new();
    for m in &methods {
        let ident = &m.ident;
        let name = ident.to_string();
        let async_ident = format_ident!("{}_async", ident);
        let tys = &m.args;
        let names: Vec<_> = (0..tys.len()).map(|i| format_ident!("__a{}", i)).collect();
        let out = &m.output;
        let docs = &m.docs;
        let async_doc = format!(
            "[`{name}`](Self::{name}) as a future: sent when first polled; dropped before \
             the method started on the server, it does not run."
        );
        client.push(quote! {
            #(#docs)*
            #[allow(clippy::too_many_arguments)]
            #vis fn #ident(&self, #(#names: #tys),*)
                -> ::core::result::Result<#out, ::spindle::manager::ManagerError>
            {
                self.remote.invoke(#name, &(#(#names,)*))
            }

            #[doc = #async_doc]
            #[allow(clippy::too_many_arguments)]
            #vis fn #async_ident(&self, #(#names: #tys),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#out, ::spindle::manager::ManagerError>,
                > + ::core::marker::Send + '_
            {
                self.remote.invoke_async(#name, &(#(#names,)*))
            }
        });
        arms.push(quote! {
            #name => {
                let (#(#names,)*): (#(#tys,)*) =
                    ::spindle::manager::decode_args(method, args)?;
                let out: #out = <__T as #tr>::#ident(&mut self.0, #(#names),*);
                ::spindle::manager::encode_result(method, &out)
            }
        });
    }

    let proxy_doc = format!(
        "Proxy of a [`{tr}`] held by a manager server (generated by \
         `#[spindle::remote]`): each method of the trait, returning \
         `Result<_, ManagerError>`, and its `_async` face. Serve an object with \
         [`{proxy}::typeid`] and `BaseManager::builder().register(name, ...)`; \
         reach it with `manager.get::<{proxy}>(name)`."
    );
    let typeid_doc = format!(
        "What serves `obj` under a registered name: \
         `BaseManager::builder().register(name, {proxy}::typeid(obj))`."
    );
    Ok(quote! {
        #item

        #[doc = #proxy_doc]
        #[derive(Clone, Debug)]
        #vis struct #proxy {
            remote: ::spindle::manager::RemoteHandle,
        }

        impl ::spindle::manager::RemoteInterface for #proxy {
            const NAME: &'static str = #typeid;
            const SIGNATURE: u64 = #signature;
            fn from_remote(handle: ::spindle::manager::RemoteHandle) -> Self {
                #proxy { remote: handle }
            }
        }

        impl ::spindle::manager::__private::serde::Serialize for #proxy {
            fn serialize<__S: ::spindle::manager::__private::serde::Serializer>(
                &self,
                s: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                ::spindle::manager::__private::serde::Serialize::serialize(&self.remote, s)
            }
        }

        impl<'de> ::spindle::manager::__private::serde::Deserialize<'de> for #proxy {
            fn deserialize<__D: ::spindle::manager::__private::serde::Deserializer<'de>>(
                d: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                ::spindle::manager::deserialize_proxy::<Self, __D>(d)
            }
        }

        #[allow(dead_code)]
        impl #proxy {
            #(#client)*

            #[doc = #typeid_doc]
            #vis fn typeid<__T: #tr + ::core::marker::Send + 'static>(
                obj: __T,
            ) -> ::spindle::manager::Typeid {
                struct Served<__T>(__T);
                impl<__T: #tr + ::core::marker::Send + 'static> ::spindle::manager::RemoteObject
                    for Served<__T>
                {
                    fn typeid(&self) -> &'static str {
                        #typeid
                    }
                    fn signature(&self) -> u64 {
                        #signature
                    }
                    fn invoke(
                        &mut self,
                        method: &str,
                        args: &[u8],
                    ) -> ::core::result::Result<
                        ::std::vec::Vec<u8>,
                        ::spindle::manager::RemoteFault,
                    > {
                        let _ = &args;
                        match method {
                            #(#arms)*
                            _ => ::core::result::Result::Err(
                                ::spindle::manager::RemoteFault::UnknownMethod(
                                    ::std::string::ToString::to_string(method),
                                ),
                            ),
                        }
                    }
                }
                ::spindle::manager::Typeid::remote(Served(obj))
            }

            /// The handle the proxy calls through (to call a method by name).
            #vis fn remote_handle(&self) -> &::spindle::manager::RemoteHandle {
                &self.remote
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(src: &str) -> syn::Result<TokenStream> {
        expand(None, &syn::parse_str::<ItemTrait>(src).unwrap())
    }

    fn refused(src: &str, says: &str) {
        let e = expand_str(src).expect_err(src).to_string();
        assert!(e.contains(says), "{src}: {e}");
    }

    #[test]
    fn the_rules_are_checked_with_a_reason() {
        refused("trait T { fn f(self); }", "`&self` or `&mut self`");
        refused("trait T { fn f(); }", "`&self` or `&mut self`");
        refused(
            "trait T { fn f(self: Box<Self>); }",
            "`&self` or `&mut self`",
        );
        refused("trait T { fn f(&self, s: &str); }", "by value");
        refused("trait T { fn f(&self) -> &str; }", "owned value");
        refused("trait T { fn f(&self, x: impl Clone); }", "by value");
        refused("trait T { async fn f(&self); }", "cannot be async");
        refused("trait T { fn f<X>(&self, x: X); }", "cannot be generic");
        refused("trait T<X> { fn f(&self); }", "cannot be generic");
        refused("trait T { const N: u8; }", "only methods");
        refused("trait T { fn typeid(&self); }", "rename the method");
        refused("trait T { fn f(&self); fn f_async(&self); }", "would clash");
        refused("trait T { fn f(&self, (a, b): (u8, u8)); }", "plain names");
        assert!(expand_str("trait T { fn f(&mut self, a: u8, _: String) -> Vec<u8>; }").is_ok());
    }

    fn signature(src: &str) -> String {
        let out = expand_str(src).unwrap().to_string();
        let at = out.find("SIGNATURE").unwrap();
        out[at..].split(';').next().unwrap().to_string()
    }

    #[test]
    fn the_signature_follows_names_receivers_and_types() {
        let base = signature("trait T { fn f(&self, a: u8) -> u16; }");
        assert_eq!(
            base,
            signature("trait T { fn f(&self, b: u8) -> u16; }"),
            "names of parameters do not count"
        );
        assert_eq!(
            base,
            signature("trait T { fn f(&self, a: u8)->u16; }"),
            "nor whitespace"
        );
        for other in [
            "trait T { fn f(&mut self, a: u8) -> u16; }",
            "trait T { fn f(&self, a: u16) -> u16; }",
            "trait T { fn f(&self, a: u8) -> u32; }",
            "trait T { fn g(&self, a: u8) -> u16; }",
            "trait T { fn f(&self, a: u8) -> u16; fn h(&self); }",
        ] {
            assert_ne!(base, signature(other), "{other}");
        }
    }
}
