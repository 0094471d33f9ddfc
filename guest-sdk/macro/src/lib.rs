//! The `#[job]` attribute of `sandfire-guest`: turns one function into a Sandfire job's `run`
//! export.
//!
//! It keeps the function as written and adds the glue: a hidden type implementing the generated
//! `Guest` trait, type assertions spanned at the user's types (so a type that cannot be
//! deserialized or serialized is reported where it is written), and the bindings' `export!`.
//! A signature the glue cannot call is rejected here with an error pointing at the offending
//! code, never left to fail inside generated code.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

const SIGNATURE: &str = "expected `fn name(ctx: Context, input: Input) -> Result<Output, JobError>` (the `ctx` parameter may be omitted)";

/// Marks the function that is this component's job. See the `sandfire-guest` crate docs.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the item so an error here does not cascade into "cannot find function" errors.
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#item #error).into()
        }
    }
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "`#[job]` takes no arguments"));
    }
    let function: ItemFn = syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            format!("`#[job]` can only be applied to a function; {SIGNATURE}"),
        )
    })?;
    let job = Job::parse(&function)?;
    Ok(job.expand(&function))
}

/// What the glue needs to know about the user's function.
struct Job<'a> {
    /// The context parameter's type, if the function takes one.
    context: Option<&'a Type>,
    input: &'a Type,
    output: &'a Type,
}

impl<'a> Job<'a> {
    fn parse(function: &'a ItemFn) -> syn::Result<Self> {
        let sig = &function.sig;
        if let Some(token) = &sig.constness {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be a `const fn`",
            ));
        }
        if let Some(token) = &sig.asyncness {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be `async`: write a synchronous function",
            ));
        }
        if let Some(token) = &sig.unsafety {
            return Err(syn::Error::new_spanned(
                token,
                "a job cannot be an `unsafe fn`",
            ));
        }
        if let Some(abi) = &sig.abi {
            return Err(syn::Error::new_spanned(abi, "a job cannot declare an ABI"));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                &sig.generics,
                "a job cannot be generic: name concrete input and output types",
            ));
        }
        if let Some(clause) = &sig.generics.where_clause {
            return Err(syn::Error::new_spanned(
                clause,
                "a job cannot have a `where` clause",
            ));
        }
        if let Some(variadic) = &sig.variadic {
            return Err(syn::Error::new_spanned(
                variadic,
                "a job cannot be variadic",
            ));
        }

        let mut params = Vec::with_capacity(2);
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(receiver) => {
                    return Err(syn::Error::new_spanned(
                        receiver,
                        "a job is a free function, not a method: remove `self`",
                    ));
                }
                FnArg::Typed(pat) => {
                    if let Type::ImplTrait(ty) = &*pat.ty {
                        return Err(syn::Error::new_spanned(
                            ty,
                            "a job cannot take `impl Trait`: name a concrete input type",
                        ));
                    }
                    params.push(&*pat.ty);
                }
            }
        }
        let (context, input) = match params[..] {
            [input] if last_segment_is(input, "Context") => {
                return Err(syn::Error::new_spanned(
                    &sig.inputs,
                    format!("a job with one parameter takes only its input; {SIGNATURE}"),
                ));
            }
            [input] => (None, input),
            [context, input] => (Some(context), input),
            _ => {
                let span = if sig.inputs.is_empty() {
                    sig.paren_token.span.join()
                } else {
                    sig.inputs.span()
                };
                return Err(syn::Error::new(
                    span,
                    format!("a job takes one or two parameters; {SIGNATURE}"),
                ));
            }
        };

        let output = match &sig.output {
            ReturnType::Type(_, ty) if last_segment_is(ty, "Result") => &**ty,
            ReturnType::Type(_, ty) => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "a job must return a `Result`, e.g. `Result<Output, JobError>`",
                ));
            }
            ReturnType::Default => {
                return Err(syn::Error::new_spanned(
                    &sig.ident,
                    "a job must return a `Result`, e.g. `-> Result<Output, JobError>`",
                ));
            }
        };
        Ok(Self {
            context,
            input,
            output,
        })
    }

    fn expand(&self, function: &ItemFn) -> TokenStream2 {
        let name = &function.sig.ident;
        let private = quote!(::sandfire_guest::__private);

        // Bounds checked where the user wrote the types, so errors point there.
        let input_ty = self.input;
        let mut asserts = vec![quote_spanned! {input_ty.span()=>
            #private::assert_input::<#input_ty>();
        }];
        match result_args(self.output) {
            Some((ok, err)) => {
                asserts.push(quote_spanned! {ok.span()=> #private::assert_output::<#ok>(); });
                asserts.push(quote_spanned! {err.span()=> #private::assert_error::<#err>(); });
            }
            None => {
                let ty = self.output;
                asserts.push(quote_spanned! {ty.span()=> #private::assert_result::<#ty>(); });
            }
        }

        // A context of the wrong type is reported as a mismatch at the user's parameter type.
        let call = match self.context {
            Some(ty) => {
                let ctx = quote_spanned!(ty.span()=> ctx);
                quote!(|ctx, input| #name(#ctx, input))
            }
            None => quote!(|_ctx, input| #name(input)),
        };
        let run = if is_unit(self.input) {
            quote!(#private::run_without_input(ctx, #call))
        } else {
            quote!(#private::run(ctx, input, #call))
        };

        quote! {
            #function

            /// The type exporting this component's job. Its fixed name makes a second `#[job]`
            /// in the same module a compile error; elsewhere in the crate the duplicate `run`
            /// export symbol is.
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            struct __sandfire_job;

            const _: () = {
                impl #private::Guest for __sandfire_job {
                    fn run(
                        ctx: #private::WitContext,
                        input: ::std::vec::Vec<u8>,
                    ) -> ::std::result::Result<::std::vec::Vec<u8>, #private::WitJobError> {
                        #(#asserts)*
                        let _ = &input;
                        #run
                    }
                }

                // Only a component has a `run` export; a native build (unit tests) does not,
                // so there the glue is marked used here instead, keeping the job from being
                // reported as dead code.
                #[cfg(target_arch = "wasm32")]
                #private::bindings::export!(
                    __sandfire_job with_types_in #private::bindings
                );
                #[cfg(not(target_arch = "wasm32"))]
                const _: #private::RunFn = <__sandfire_job as #private::Guest>::run;
            };
        }
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Paren(p) => last_segment_is(&p.elem, name),
        Type::Group(g) => last_segment_is(&g.elem, name),
        _ => false,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// `Result<O, E>` → `(O, E)`; `None` for an alias such as `io::Result<O>`.
fn result_args(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(p) = ty else { return None };
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(ok), Some(err), None) => Some((ok, err)),
        _ => None,
    }
}
